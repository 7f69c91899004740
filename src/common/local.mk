noinst_LIBRARIES += src/common/libcommon.a
src_common_libcommon_a_SOURCES = src/common/log.c src/common/util.c src/common/codes.c \
	src/common/message.c
noinst_HEADERS += include/chand/log.h include/chand/util.h include/chand/codes.h \
	include/chand/message.h
