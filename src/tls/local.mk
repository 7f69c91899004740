# tls module: src/tls/libtls.a (see Makefile.am for the link order)
noinst_LIBRARIES += src/tls/libtls.a
src_tls_libtls_a_SOURCES =
