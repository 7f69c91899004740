# store module: src/store/libstore.a (see Makefile.am for the link order)
noinst_LIBRARIES += src/store/libstore.a
src_store_libstore_a_SOURCES =
