// ggml_oracle drives a prebuilt libggml-base.so (loaded with dlopen) so the Go
// tests can compare the reference dequantizers with ggml's own on the same
// bytes. Usage:
//   ggml_oracle LIB table            -> "id name block_size type_size" per line
//   ggml_oracle LIB deq NAME N       -> stdin: N elements' blocks; stdout: N f32
//   ggml_oracle LIB quant NAME N     -> stdin: N f32; stdout: the blocks
// Types are named as in the symbols, e.g. q4_K.
#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef void (*to_float_fn)(const void *, float *, int64_t);
typedef void (*from_float_fn)(const float *, void *, int64_t);

static void *sym(void *lib, const char *prefix, const char *name, const char *suffix) {
    char buf[128];
    snprintf(buf, sizeof buf, "%s%s%s", prefix, name, suffix);
    void *p = dlsym(lib, buf);
    if (!p) {
        fprintf(stderr, "no symbol %s\n", buf);
        exit(2);
    }
    return p;
}

static void *read_all(size_t n) {
    void *buf = malloc(n ? n : 1);
    if (fread(buf, 1, n, stdin) != n) {
        fprintf(stderr, "short input\n");
        exit(2);
    }
    return buf;
}

int main(int argc, char **argv) {
    if (argc < 3) return 2;
    void *lib = dlopen(argv[1], RTLD_NOW);
    if (!lib) {
        fprintf(stderr, "%s\n", dlerror());
        return 2;
    }
    if (strcmp(argv[2], "table") == 0) {
        const char *(*type_name)(int) = sym(lib, "", "ggml_type_name", "");
        int64_t (*blck)(int) = sym(lib, "", "ggml_blck_size", "");
        size_t (*size)(int) = sym(lib, "", "ggml_type_size", "");
        int count = argc > 3 ? atoi(argv[3]) : 40;
        for (int t = 0; t < count; t++) {
            const char *n = type_name(t);
            printf("%d %s %lld %zu\n", t, n ? n : "-", (long long)blck(t), size(t));
        }
        return 0;
    }
    if (argc < 5) return 2;
    int64_t n = atoll(argv[4]);
    size_t (*row_size)(int, int64_t) = sym(lib, "", "ggml_row_size", "");
    int typ = atoi(argc > 5 ? argv[5] : "-1");
    if (strcmp(argv[2], "deq") == 0) {
        to_float_fn f = sym(lib, "dequantize_row_", argv[3], "");
        size_t bytes = row_size(typ, n);
        void *src = read_all(bytes);
        float *dst = malloc(sizeof(float) * (n ? n : 1));
        f(src, dst, n);
        fwrite(dst, sizeof(float), n, stdout);
        return 0;
    }
    if (strcmp(argv[2], "quant") == 0) {
        from_float_fn f = sym(lib, "quantize_row_", argv[3], "_ref");
        size_t bytes = row_size(typ, n);
        float *src = read_all(sizeof(float) * n);
        void *dst = calloc(1, bytes ? bytes : 1);
        f(src, dst, n);
        fwrite(dst, 1, bytes, stdout);
        return 0;
    }
    return 2;
}
