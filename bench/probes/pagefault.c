/* What touching fresh memory costs on this machine, three ways (docs/design/performance.md, "Two costs
 * of this machine"). The library's W1, W2 and W4 figures are bounded by the first line.
 *
 *   gcc -O2 -o /tmp/pagefault bench/probes/pagefault.c && /tmp/pagefault [MB]     (default 200 MB)
 *
 *   4 KiB faults       one write per page of a fresh anonymous mapping: one page fault per 4 KiB page,
 *                      which is how the .NET GC's heap is touched
 *   populated          MADV_POPULATE_WRITE (Linux 5.14) maps the whole range in one call, then one write
 *                      per page
 *   huge pages         MADV_HUGEPAGE on the whole mapping first: one fault per 2 MiB (transparent huge
 *                      pages are madvise-only here). The .NET GC cannot use them: it commits its regions
 *                      64 KiB at a time, so no committed range spans an aligned 2 MiB. */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <time.h>

#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

static double now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec + t.tv_nsec * 1e-9;
}

/* Maps `bytes` fresh, prepares them as `how` says, writes one byte per 4 KiB page; returns ms per MB. */
static double touch(size_t bytes, int how)
{
    char *p = mmap(NULL, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) { perror("mmap"); exit(1); }
    double t = now();
    if (how == 1 && madvise(p, bytes, MADV_POPULATE_WRITE) != 0) { perror("MADV_POPULATE_WRITE"); exit(1); }
    if (how == 2 && madvise(p, bytes, MADV_HUGEPAGE) != 0) { perror("MADV_HUGEPAGE"); exit(1); }
    for (size_t i = 0; i < bytes; i += 4096) p[i] = 1;
    double ms = (now() - t) * 1e3;
    munmap(p, bytes);
    return ms / (bytes >> 20);
}

int main(int argc, char **argv)
{
    size_t mb = argc > 1 ? strtoul(argv[1], NULL, 10) : 200;
    if (mb == 0 || mb > 4096) { fprintf(stderr, "usage: pagefault [MB 1..4096]\n"); return 2; }
    const char *names[] = { "4 KiB faults", "populated", "huge pages" };
    for (int round = 0; round < 2; round++)
        for (int how = 0; how < 3; how++)
            printf("round %d  %-13s %6.3f ms per MB  (%zu MB)\n", round + 1, names[how], touch(mb << 20, how), mb);
    return 0;
}
