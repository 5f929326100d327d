LIBS_gzip = $(ZLIB_LIBS)
