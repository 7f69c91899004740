# proto module: src/proto/libproto.a (see Makefile.am for the link order)
noinst_LIBRARIES += src/proto/libproto.a
src_proto_libproto_a_SOURCES =
