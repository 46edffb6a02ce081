/* Replays every file of a corpus directory through the fuzz entry it is
 * linked with (fuzz_event_decode.c or fuzz_redis_reply.c: one binary each,
 * tests/fuzz/CMakeLists.txt), so each build, with or without clang, runs the seeds
 * and every crash a fuzzer found once (ctest "fuzz_replay", "fuzz_redis_reply_replay"). Exits
 * non-zero when the directory cannot be read or holds no inputs; a broken promise aborts inside the
 * entry. */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_FILE_MAX (4 * 1024 * 1024) /* corpus files are small; bigger ones are skipped */

static int replay_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return -1;
    uint8_t *buf = malloc(REPLAY_FILE_MAX);
    if (!buf) {
        fclose(f);
        return -1;
    }
    size_t n = fread(buf, 1, REPLAY_FILE_MAX, f);
    fclose(f);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: fuzz_replay CORPUS_DIR\n");
        return 2;
    }
    DIR *d = opendir(argv[1]);
    if (!d) {
        fprintf(stderr, "fuzz_replay: cannot open '%s'\n", argv[1]);
        return 1;
    }
    int count = 0, failed = 0;
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        if (e->d_name[0] == '.')
            continue;
        char path[4096];
        snprintf(path, sizeof(path), "%s/%s", argv[1], e->d_name);
        if (replay_file(path) != 0) {
            fprintf(stderr, "fuzz_replay: cannot read '%s'\n", path);
            failed++;
            continue;
        }
        count++;
    }
    closedir(d);
    printf("fuzz_replay: %d inputs replayed\n", count);
    return count > 0 && failed == 0 ? 0 : 1;
}
