// Do page faults of two threads run in parallel on this machine? One thread touches 100 MB of fresh anonymous
// memory (one write per 4 KiB page), then two threads touch 100 MB each at the same time.
//   gcc -O2 -pthread -o /tmp/parallelfaults bench/probes/parallelfaults.c && /tmp/parallelfaults
// On the benchmark VM (2026-12-05): one thread 249-252 ms; two threads 387-464 ms of wall time.
#include <pthread.h>
#include <stdio.h>
#include <sys/mman.h>
#include <time.h>

static const size_t Size = 100u << 20;

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

static void *touch(void *result)
{
    char *p = mmap(NULL, Size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { *(double *)result = -1; return NULL; }
    double start = now();
    for (size_t i = 0; i < Size; i += 4096) p[i] = 1;
    *(double *)result = now() - start;
    munmap(p, Size);
    return NULL;
}

int main(void)
{
    double a, b;
    touch(&a);
    printf("one thread, 100 MB:          %.1f ms\n", a * 1e3);
    pthread_t x, y;
    double start = now();
    pthread_create(&x, NULL, touch, &a);
    pthread_create(&y, NULL, touch, &b);
    pthread_join(x, NULL);
    pthread_join(y, NULL);
    printf("two threads, 100 MB each:    %.1f and %.1f ms, wall %.1f ms\n", a * 1e3, b * 1e3, (now() - start) * 1e3);
    return 0;
}
