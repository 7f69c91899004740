# agent module: src/agent/libagent.a (see Makefile.am for the link order)
noinst_LIBRARIES += src/agent/libagent.a
src_agent_libagent_a_SOURCES =
