/* Miniature flatc (tflite-forge fixture).
 *
 *   flatc --version
 *   flatc --cpp -o OUTDIR SCHEMA.fbs    -> OUTDIR/SCHEMA_generated.h
 *
 * Reads a FlatBuffers schema subset (namespace, table, struct, enum, union,
 * file_identifier, file_extension, root_type, attribute, include) and writes a
 * C header with the file identifier and each table field's vtable offset
 * (4 + 2 * slot; a union field takes two slots: its _type, then its value). */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef FLATC_VERSION
#define FLATC_VERSION "0"
#endif

enum { MAX_TOKEN = 128, MAX_UNIONS = 256 };

struct lexer {
  const char* p;
  const char* end;
  int line;
  char token[MAX_TOKEN];
  int is_string;
};

static const char* schema_path;

static void die(const struct lexer* lx, const char* what) {
  fprintf(stderr, "flatc: error: %s:%d: %s\n", schema_path, lx ? lx->line : 0, what);
  exit(1);
}

/* Next token into lx->token; returns 0 at end of input. */
static int next(struct lexer* lx) {
  for (;;) {
    while (lx->p < lx->end && isspace((unsigned char) *lx->p)) {
      if (*lx->p == '\n') lx->line++;
      lx->p++;
    }
    if (lx->p + 1 < lx->end && lx->p[0] == '/' && lx->p[1] == '/') {
      while (lx->p < lx->end && *lx->p != '\n') lx->p++;
      continue;
    }
    break;
  }
  if (lx->p >= lx->end) return 0;
  size_t n = 0;
  lx->is_string = 0;
  if (*lx->p == '"') {
    lx->is_string = 1;
    lx->p++;
    while (lx->p < lx->end && *lx->p != '"' && n + 1 < MAX_TOKEN) lx->token[n++] = *lx->p++;
    if (lx->p >= lx->end || *lx->p != '"') die(lx, "unterminated or overlong string");
    lx->p++;
  } else if (isalnum((unsigned char) *lx->p) || *lx->p == '_' || *lx->p == '-' || *lx->p == '.') {
    while (lx->p < lx->end && (isalnum((unsigned char) *lx->p) || strchr("_-.", *lx->p)) && n + 1 < MAX_TOKEN) {
      lx->token[n++] = *lx->p++;
    }
  } else {
    lx->token[n++] = *lx->p++;
  }
  lx->token[n] = '\0';
  return 1;
}

static void expect(struct lexer* lx, const char* want) {
  if (!next(lx) || strcmp(lx->token, want) != 0) {
    char msg[256];
    snprintf(msg, sizeof msg, "expected '%s', found '%s'", want, lx->token);
    die(lx, msg);
  }
}

static void upper(char* dst, const char* src, size_t size) {
  size_t i = 0;
  for (; src[i] && i + 1 < size; i++) dst[i] = src[i] == '.' ? '_' : (char) toupper((unsigned char) src[i]);
  dst[i] = '\0';
}

/* Skips a balanced { ... } block whose '{' is the next token. */
static void skip_block(struct lexer* lx) {
  while (next(lx) && strcmp(lx->token, "{") != 0) {
  }
  int depth = 1;
  while (depth > 0) {
    if (!next(lx)) die(lx, "unexpected end of schema inside { }");
    if (strcmp(lx->token, "{") == 0) depth++;
    if (strcmp(lx->token, "}") == 0) depth--;
  }
}

static char unions[MAX_UNIONS][MAX_TOKEN];
static int union_count;

static int is_union(const char* type) {
  for (int i = 0; i < union_count; i++) {
    if (strcmp(unions[i], type) == 0) return 1;
  }
  return 0;
}

static void table(struct lexer* lx, FILE* out, const char* prefix) {
  char name[MAX_TOKEN], uname[MAX_TOKEN], ufield[MAX_TOKEN];
  if (!next(lx)) die(lx, "table name expected");
  snprintf(name, sizeof name, "%s", lx->token);
  upper(uname, name, sizeof uname);
  expect(lx, "{");
  fprintf(out, "\n/* table %s */\n", name);
  int slot = 0;
  for (;;) {
    if (!next(lx)) die(lx, "unexpected end of schema in table");
    if (strcmp(lx->token, "}") == 0) break;
    char field[MAX_TOKEN], type[MAX_TOKEN];
    snprintf(field, sizeof field, "%s", lx->token);
    expect(lx, ":");
    if (!next(lx)) die(lx, "field type expected");
    if (strcmp(lx->token, "[") == 0) {
      if (!next(lx)) die(lx, "vector element type expected");
      snprintf(type, sizeof type, "%s", lx->token);
      expect(lx, "]");
    } else {
      snprintf(type, sizeof type, "%s", lx->token);
    }
    while (next(lx) && strcmp(lx->token, ";") != 0) {
      if (strcmp(lx->token, "id") == 0) die(lx, "explicit field ids are not supported by this flatc");
    }
    upper(ufield, field, sizeof ufield);
    if (is_union(type)) {
      fprintf(out, "#define %s_%s_VT_%s_TYPE %d\n", prefix, uname, ufield, 4 + 2 * slot++);
    }
    fprintf(out, "#define %s_%s_VT_%s %d\n", prefix, uname, ufield, 4 + 2 * slot++);
  }
}

static char* read_file(const char* path, size_t* size) {
  FILE* f = fopen(path, "rb");
  if (!f) return NULL;
  char* buf = NULL;
  size_t cap = 0, n = 0, r;
  do {
    if (n == cap) {
      cap = cap ? cap * 2 : 4096;
      char* grown = realloc(buf, cap);
      if (!grown) { free(buf); fclose(f); return NULL; }
      buf = grown;
    }
    r = fread(buf + n, 1, cap - n, f);
    n += r;
  } while (r > 0);
  fclose(f);
  *size = n;
  return buf;
}

int main(int argc, char** argv) {
  const char* outdir = ".";
  int cpp = 0;
  schema_path = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--version") == 0) {
      printf("flatc version %s (tflite-forge miniature)\n", FLATC_VERSION);
      return 0;
    } else if (strcmp(argv[i], "--cpp") == 0 || strcmp(argv[i], "-c") == 0) {
      cpp = 1;
    } else if (strcmp(argv[i], "-o") == 0 && i + 1 < argc) {
      outdir = argv[++i];
    } else if (argv[i][0] != '-' && schema_path == NULL) {
      schema_path = argv[i];
    } else {
      fprintf(stderr, "flatc: error: unsupported argument '%s'\nusage: flatc --cpp -o OUTDIR SCHEMA.fbs\n", argv[i]);
      return 2;
    }
  }
  if (!cpp || schema_path == NULL) {
    fprintf(stderr, "usage: flatc --cpp -o OUTDIR SCHEMA.fbs | flatc --version\n");
    return 2;
  }
  size_t size = 0;
  char* text = read_file(schema_path, &size);
  if (!text) {
    fprintf(stderr, "flatc: error: cannot read %s\n", schema_path);
    return 1;
  }

  const char* base = strrchr(schema_path, '/');
  base = base ? base + 1 : schema_path;
  char stem[MAX_TOKEN];
  snprintf(stem, sizeof stem, "%s", base);
  char* dot = strrchr(stem, '.');
  if (dot) *dot = '\0';
  char out_path[4096], tmp_path[4200], guard[MAX_TOKEN];
  snprintf(out_path, sizeof out_path, "%s/%s_generated.h", outdir, stem);
  snprintf(tmp_path, sizeof tmp_path, "%s.tmp", out_path);
  upper(guard, stem, sizeof guard);
  FILE* out = fopen(tmp_path, "w");
  if (!out) {
    fprintf(stderr, "flatc: error: cannot write %s\n", tmp_path);
    return 1;
  }
  fprintf(out, "/* Generated by flatc %s (tflite-forge miniature) from %s. Do not edit. */\n", FLATC_VERSION, base);
  fprintf(out, "#ifndef FLATC_%s_GENERATED_H_\n#define FLATC_%s_GENERATED_H_\n", guard, guard);

  struct lexer lx = {text, text + size, 1, {0}, 0};
  char prefix[MAX_TOKEN] = "FLATBUFFERS";
  while (next(&lx)) {
    if (strcmp(lx.token, "namespace") == 0) {
      if (!next(&lx)) die(&lx, "namespace name expected");
      upper(prefix, lx.token, sizeof prefix);
      expect(&lx, ";");
    } else if (strcmp(lx.token, "table") == 0) {
      table(&lx, out, prefix);
    } else if (strcmp(lx.token, "union") == 0) {
      if (!next(&lx)) die(&lx, "union name expected");
      if (union_count == MAX_UNIONS) die(&lx, "too many unions");
      snprintf(unions[union_count++], MAX_TOKEN, "%s", lx.token);
      skip_block(&lx);
    } else if (strcmp(lx.token, "struct") == 0 || strcmp(lx.token, "enum") == 0) {
      skip_block(&lx);
    } else if (strcmp(lx.token, "file_identifier") == 0 || strcmp(lx.token, "file_extension") == 0) {
      char key[MAX_TOKEN];
      upper(key, lx.token, sizeof key);
      if (!next(&lx) || !lx.is_string) die(&lx, "string expected");
      if (strcmp(key, "FILE_IDENTIFIER") == 0 && strlen(lx.token) != 4) die(&lx, "file_identifier must be 4 characters");
      fprintf(out, "#define %s_%s \"%s\"\n", prefix, key, lx.token);
      expect(&lx, ";");
    } else if (strcmp(lx.token, "root_type") == 0) {
      if (!next(&lx)) die(&lx, "root type expected");
      fprintf(out, "#define %s_ROOT_TYPE \"%s\"\n", prefix, lx.token);
      expect(&lx, ";");
    } else if (strcmp(lx.token, "attribute") == 0 || strcmp(lx.token, "include") == 0) {
      while (next(&lx) && strcmp(lx.token, ";") != 0) {
      }
    } else {
      char msg[256];
      snprintf(msg, sizeof msg, "unexpected '%s'", lx.token);
      die(&lx, msg);
    }
  }
  fprintf(out, "\n#endif\n");
  free(text);
  if (fclose(out) != 0 || rename(tmp_path, out_path) != 0) {
    fprintf(stderr, "flatc: error: cannot write %s\n", out_path);
    remove(tmp_path);
    return 1;
  }
  return 0;
}
