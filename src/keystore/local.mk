# keystore module: src/keystore/libkeystore.a (see Makefile.am for the link order)
noinst_LIBRARIES += src/keystore/libkeystore.a
src_keystore_libkeystore_a_SOURCES =
