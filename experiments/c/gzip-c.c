/* gzip-c: a WASI command in C that answers with bytes: it compresses
 * whatever comes on stdin to the gzip format (RFC 1952) with zlib and
 * writes it to stdout. zlib's sources come from the libz-sys crate
 * (pinned in zlib-source/Cargo.lock; see build.sh), compiled with clang +
 * wasi-libc and natively, so the tests can compare the two byte for byte.
 *
 * On the provider's route (/function/gzip-c) stdin is the request's body;
 * on the REST API it is the arguments' JSON. The header has no name and no
 * time (MTIME 0), so the same input always gives the same bytes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "zlib.h"

static int fail(const char *message) {
  fprintf(stderr, "gzip-c: %s\n", message);
  return 2;
}

int main(void) {
  z_stream stream;
  unsigned char in[16384], out[16384];
  memset(&stream, 0, sizeof stream);
  /* 15 window bits + 16: a gzip wrapper instead of zlib's. */
  if (deflateInit2(&stream, 9, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
    return fail("cannot start deflate");
  int flush;
  do {
    stream.avail_in = (uInt)fread(in, 1, sizeof in, stdin);
    if (ferror(stdin)) return fail("cannot read stdin");
    stream.next_in = in;
    flush = feof(stdin) ? Z_FINISH : Z_NO_FLUSH;
    do {
      stream.avail_out = sizeof out;
      stream.next_out = out;
      if (deflate(&stream, flush) == Z_STREAM_ERROR) return fail("deflate failed");
      size_t have = sizeof out - stream.avail_out;
      if (fwrite(out, 1, have, stdout) != have) return fail("cannot write stdout");
    } while (stream.avail_out == 0);
  } while (flush != Z_FINISH);
  deflateEnd(&stream);
  return fflush(stdout) == 0 ? 0 : fail("cannot write stdout");
}
