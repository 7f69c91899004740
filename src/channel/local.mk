# channel module: src/channel/libchannel.a (see Makefile.am for the link order)
noinst_LIBRARIES += src/channel/libchannel.a
src_channel_libchannel_a_SOURCES =
