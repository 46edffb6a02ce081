/* Produce-rate benchmark for libhookq: hookq_produce_batch() with 1 KiB
 * payloads in batches of 100 and 1000 (and single hookq_produce() calls for
 * reference), against a private redis-server it starts on a free loopback
 * port (or the URL given as argv[1]). Prints events/s per batch size.
 *
 *   build/bin/produce_bench [redis://127.0.0.1:PORT/0] [events-per-run]
 *
 * A measurement tool, not a test: nothing here asserts a speed. */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <hiredis/hiredis.h>

#include "common/redis_sync.h"
#include "hookq/hookq.h"

#define BENCH_PAYLOAD   1024   /* bytes per event, a typical webhook body */
#define BENCH_EVENTS    200000 /* events per measured run, by default */
#define BENCH_BATCH_MAX 1000

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int free_port(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(a);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) != 0 ||
        getsockname(fd, (struct sockaddr *)&a, &len) != 0) {
        perror("produce_bench: free port");
        exit(1);
    }
    close(fd);
    return ntohs(a.sin_port);
}

static pid_t start_redis(int port)
{
    char p[16];
    snprintf(p, sizeof(p), "%d", port);
    pid_t pid = fork();
    if (pid == 0) {
        /* The server's start-up banner would bury the numbers. */
        int null = open("/dev/null", O_WRONLY);
        if (null >= 0) {
            dup2(null, 1);
            dup2(null, 2);
        }
        execlp("redis-server", "redis-server", "--port", p, "--bind", "127.0.0.1", "--save", "",
               "--appendonly", "no", "--loglevel", "warning", (char *)NULL);
        _exit(127);
    }
    return pid;
}

/* Runs 'total' events in batches of 'batch' (0 = single hookq_produce calls). */
static double run(struct hookq_producer *p, const struct hookq_event *evs, int batch, long total)
{
    static char ids[BENCH_BATCH_MAX][64];
    char err[256];
    double t0 = now_s();
    for (long done = 0; done < total;) {
        int rc;
        int n = batch ? batch : 1;
        if (batch)
            rc = hookq_produce_batch(p, evs, (size_t)n, ids, err, sizeof(err));
        else
            rc = hookq_produce(p, evs, ids[0], sizeof(ids[0]), err, sizeof(err));
        if (rc != 0) {
            fprintf(stderr, "produce_bench: %s\n", err);
            exit(1);
        }
        done += n;
    }
    return (double)total / (now_s() - t0);
}

int main(int argc, char **argv)
{
    char url[128];
    pid_t redis = 0;
    long total = argc > 2 ? atol(argv[2]) : BENCH_EVENTS;
    if (argc > 1) {
        snprintf(url, sizeof(url), "%s", argv[1]);
    } else {
        int port = free_port();
        redis = start_redis(port);
        snprintf(url, sizeof(url), "redis://127.0.0.1:%d/0", port);
    }
    struct hookq_producer *p = NULL;
    char err[256];
    for (int i = 0; i < 200; i++) { /* up to ~2 s for the server to listen */
        if (hookq_producer_connect(url, "bench", &p, err, sizeof(err)) == 0)
            break;
        usleep(10000);
    }
    if (!p) {
        fprintf(stderr, "produce_bench: %s\n", err);
        return 1;
    }
    static char body[BENCH_PAYLOAD];
    memset(body, 'x', sizeof(body));
    body[0] = '"';
    body[sizeof(body) - 1] = '"';
    static struct hookq_event evs[BENCH_BATCH_MAX];
    for (int i = 0; i < BENCH_BATCH_MAX; i++)
        evs[i] = (struct hookq_event){
            .type = "bench.event", .payload = body, .payload_len = sizeof(body)};

    redisContext *admin = hq_redis_connect(url, 5000, NULL);
    if (!admin) {
        fprintf(stderr, "produce_bench: cannot connect to %s\n", url);
        return 1;
    }
    printf("libhookq produce rate, %d-byte payloads, %ld events per run, %s\n", BENCH_PAYLOAD,
           total, url);
    static const int batches[] = {0, 100, 1000};
    for (size_t i = 0; i < sizeof(batches) / sizeof(*batches); i++) {
        long n = batches[i] == 0 ? total / 10 : total;
        run(p, evs, batches[i], n / 10); /* warm-up */
        double rate = run(p, evs, batches[i], n);
        if (batches[i] == 0)
            printf("  hookq_produce (one per call)   %10.0f events/s\n", rate);
        else
            printf("  hookq_produce_batch of %-5d   %10.0f events/s\n", batches[i], rate);
        /* Keep the server's memory flat between runs. */
        redisReply *r = redisCommand(admin, "DEL bench:events");
        if (r)
            freeReplyObject(r);
    }
    hookq_producer_free(p);
    redisFree(admin);
    if (redis > 0) {
        kill(redis, SIGTERM);
        waitpid(redis, NULL, 0);
    }
    return 0;
}
