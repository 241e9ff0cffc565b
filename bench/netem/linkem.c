/*
 * linkem: a userspace WAN link emulator between two TUN devices.
 *
 * It creates TUN devices A and B (IFF_TUN, no packet info), then forwards every packet read from one to
 * the other through a model of one full-duplex link, independently per direction:
 *   - a drop-tail queue holding at most QUEUE bytes waiting to be serialised,
 *   - a serialiser at RATE bit/s (counting IP bytes),
 *   - a fixed one-way propagation DELAY.
 * A packet arriving at time t starts serialising at max(t, end of the previous packet), leaves the
 * serialiser len*8/RATE later and is written to the other device DELAY after that. Delivery times are
 * monotonic per direction, so each direction is one FIFO.
 *
 * The event loop sleeps in ppoll(). Idle, it wakes as soon as a packet arrives. While packets are in
 * flight it wakes every TICK (default 200 us) rather than per packet, reads whatever arrived and writes
 * what is due, rounded to the nearest tick: a packet leaves within TICK/2 of its time, and under load
 * waits up to one TICK more to be read. This halves linkem's CPU use at 200 Mbit/s on a VM, where every
 * sleep and wake-up costs; -t 0 wakes for every packet and delivers it on time.
 *
 * Faults, both directions alike: a random loss rate (each arriving packet is dropped with probability
 * LOSS, independently: Bernoulli loss, as netem's `loss X%`) and a blackhole switch (while on, every
 * arriving packet is dropped: a cut cable or a dead route; packets already on the wire still arrive).
 * Both are set at start (-l LOSS) and changed while running by lines on stdin (with -w):
 *     loss 0.05       set the loss rate (0..1)
 *     blackhole 1     cut the link (0: restore it)
 * Each command is answered on stdout with one line, "ok loss=<rate> blackhole=<0|1>", once in force (or
 * "error <text>"), so the caller knows when it applies.
 *
 * The devices are not persistent: they vanish when this process exits. With -w it exits when stdin
 * reaches EOF, so it dies with the process that started it. Counters go to stderr as one JSON line on
 * SIGUSR1 and at exit.
 *
 * usage: linkem -a DEV_A -b DEV_B -r RATE_BIT_S -d ONE_WAY_DELAY_US -q QUEUE_BYTES [-t TICK_US]
 *               [-l LOSS] [-s SEED] [-w]
 * build: gcc -O2 -Wall -Wextra -o linkem linkem.c
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/if.h>
#include <linux/if_tun.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <time.h>
#include <unistd.h>

#define MAX_PKT 2048 /* largest packet stored; the devices' MTU must not exceed it */
#define READ_BATCH 64
#define NS 1000000000ULL

struct pkt {
    struct pkt *next;
    uint64_t due_ns;
    uint32_t len;
    unsigned char data[MAX_PKT];
};

struct dir {
    const char *name;
    int in, out;
    uint64_t free_at; /* when the serialiser finishes the last accepted packet */
    struct pkt *head, *tail;
    uint64_t pkts, bytes, drops, errors, lost, blackholed;
};

static uint64_t rate_bps, delay_ns, queue_bytes, tick_ns = 200000;
static struct pkt *free_list;
static volatile sig_atomic_t stop, want_stats;
static double loss_rate; /* probability that an arriving packet is lost */
static int blackhole;    /* every arriving packet is lost */
static uint64_t rng_state = 0x9E3779B97F4A7C15ULL;

/* xorshift64*: a uniform double in [0, 1). */
static double uniform(void) {
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return (double)((rng_state * 0x2545F4914F6CDD1DULL) >> 11) / 9007199254740992.0;
}

static void on_signal(int sig) {
    if (sig == SIGUSR1)
        want_stats = 1;
    else
        stop = 1;
}

static uint64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * NS + (uint64_t)ts.tv_nsec;
}

static void die(const char *what) {
    fprintf(stderr, "linkem: %s: %s\n", what, strerror(errno));
    exit(1);
}

static int tun_open(const char *name) {
    struct ifreq ifr;
    int fd = open("/dev/net/tun", O_RDWR | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0)
        die("open /dev/net/tun");
    memset(&ifr, 0, sizeof ifr);
    ifr.ifr_flags = IFF_TUN | IFF_NO_PI;
    snprintf(ifr.ifr_name, IFNAMSIZ, "%s", name);
    if (ioctl(fd, TUNSETIFF, &ifr) < 0)
        die(name);
    return fd;
}

static struct pkt *pkt_get(void) {
    struct pkt *p = free_list;
    if (p) {
        free_list = p->next;
        return p;
    }
    p = malloc(sizeof *p);
    if (!p)
        die("malloc");
    return p;
}

static void pkt_put(struct pkt *p) {
    p->next = free_list;
    free_list = p;
}

/* Read what the kernel queued on d->in and admit it to the link (or drop it at the tail). */
static void take(struct dir *d, uint64_t now) {
    for (int i = 0; i < READ_BATCH; i++) {
        struct pkt *p = pkt_get();
        ssize_t n = read(d->in, p->data, MAX_PKT);
        if (n <= 0) {
            pkt_put(p);
            if (n < 0 && errno != EAGAIN && errno != EINTR)
                die(d->name);
            return;
        }
        if (blackhole) {
            d->blackholed++;
            pkt_put(p);
            continue;
        }
        if (loss_rate > 0 && uniform() < loss_rate) {
            d->lost++;
            pkt_put(p);
            continue;
        }
        uint64_t start = d->free_at > now ? d->free_at : now;
        uint64_t backlog = (start - now) * rate_bps / 8 / NS; /* bytes still ahead in the queue */
        if (backlog + (uint64_t)n > queue_bytes) {
            d->drops++;
            pkt_put(p);
            continue;
        }
        d->free_at = start + (uint64_t)n * 8 * NS / rate_bps;
        p->due_ns = d->free_at + delay_ns;
        p->len = (uint32_t)n;
        p->next = NULL;
        if (d->tail)
            d->tail->next = p;
        else
            d->head = p;
        d->tail = p;
    }
}

/* Write every packet whose time has come to d->out. */
static void deliver(struct dir *d, uint64_t now) {
    while (d->head && d->head->due_ns <= now) {
        struct pkt *p = d->head;
        d->head = p->next;
        if (!d->head)
            d->tail = NULL;
        if (write(d->out, p->data, p->len) == (ssize_t)p->len) {
            d->pkts++;
            d->bytes += p->len;
        } else {
            d->errors++; /* e.g. the other device is not up yet */
        }
        pkt_put(p);
    }
}

static void print_stats(const struct dir *d, int n) {
    fprintf(stderr, "{");
    for (int i = 0; i < n; i++)
        fprintf(stderr,
                "%s\"%s\": {\"pkts\": %llu, \"bytes\": %llu, \"drops\": %llu, \"errors\": %llu, "
                "\"lost\": %llu, \"blackholed\": %llu}",
                i ? ", " : "", d[i].name, (unsigned long long)d[i].pkts, (unsigned long long)d[i].bytes,
                (unsigned long long)d[i].drops, (unsigned long long)d[i].errors, (unsigned long long)d[i].lost,
                (unsigned long long)d[i].blackholed);
    fprintf(stderr, "}\n");
    fflush(stderr);
}

/* One command line from stdin (see the header); answers on stdout. */
static void command(char *line) {
    char word[32];
    double value;
    if (sscanf(line, "%31s %lf", word, &value) != 2) {
        printf("error cannot parse %s\n", line);
    } else if (strcmp(word, "loss") == 0 && value >= 0 && value <= 1) {
        loss_rate = value;
        printf("ok loss=%g blackhole=%d\n", loss_rate, blackhole);
    } else if (strcmp(word, "blackhole") == 0) {
        blackhole = value != 0;
        printf("ok loss=%g blackhole=%d\n", loss_rate, blackhole);
    } else {
        printf("error unknown command %s\n", line);
    }
    fflush(stdout);
}

int main(int argc, char **argv) {
    const char *dev_a = NULL, *dev_b = NULL;
    int watch_stdin = 0, opt;
    while ((opt = getopt(argc, argv, "a:b:r:d:q:t:l:s:w")) != -1) {
        switch (opt) {
        case 'a': dev_a = optarg; break;
        case 'b': dev_b = optarg; break;
        case 'r': rate_bps = strtoull(optarg, NULL, 10); break;
        case 'd': delay_ns = strtoull(optarg, NULL, 10) * 1000; break;
        case 'q': queue_bytes = strtoull(optarg, NULL, 10); break;
        case 't': tick_ns = strtoull(optarg, NULL, 10) * 1000; break;
        case 'l': loss_rate = strtod(optarg, NULL); break;
        case 's': rng_state = strtoull(optarg, NULL, 10) | 1; break;
        case 'w': watch_stdin = 1; break;
        default: goto usage;
        }
    }
    if (!dev_a || !dev_b || rate_bps == 0 || queue_bytes < MAX_PKT || optind != argc || loss_rate < 0 ||
        loss_rate > 1)
        goto usage;

    prctl(PR_SET_TIMERSLACK, 1UL); /* wake when asked, not up to 50 us later */
    sigset_t block, run;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGUSR1);
    sigprocmask(SIG_BLOCK, &block, &run); /* signals arrive only inside ppoll() */
    struct sigaction sa = {.sa_handler = on_signal};
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);

    int fd_a = tun_open(dev_a), fd_b = tun_open(dev_b);
    struct dir dirs[2] = {
        {.name = "a_to_b", .in = fd_a, .out = fd_b},
        {.name = "b_to_a", .in = fd_b, .out = fd_a},
    };
    printf("ready\n");
    fflush(stdout);

    struct pollfd fds[3] = {
        {.fd = fd_a},
        {.fd = fd_b},
        {.fd = watch_stdin ? STDIN_FILENO : -1, .events = POLLIN},
    };
    uint64_t last_wake = 0;
    char pending[512];
    size_t pending_len = 0;
    while (!stop) {
        uint64_t now = now_ns(), next = UINT64_MAX;
        for (int i = 0; i < 2; i++)
            take(&dirs[i], now);
        for (int i = 0; i < 2; i++) {
            deliver(&dirs[i], now + tick_ns / 2); /* round to the nearest tick */
            if (dirs[i].head && dirs[i].head->due_ns < next)
                next = dirs[i].head->due_ns;
        }
        /* Idle: sleep until a packet arrives. Busy: until the next packet is due, or with a tick until the
         * next tick, leaving arrivals to be read then (far fewer wake-ups, each handling a few packets). */
        struct timespec wait, *timeout = NULL;
        short events = POLLIN;
        if (next != UINT64_MAX) {
            uint64_t until = next;
            if (tick_ns) {
                until = last_wake + tick_ns;
                events = 0;
            }
            uint64_t w = until > now ? until - now : 0;
            wait.tv_sec = (time_t)(w / NS);
            wait.tv_nsec = (long)(w % NS);
            timeout = &wait;
        }
        fds[0].events = fds[1].events = events;
        int ready = ppoll(fds, 3, timeout, &run);
        last_wake = now_ns();
        if (want_stats) {
            want_stats = 0;
            print_stats(dirs, 2);
        }
        if (ready < 0) {
            if (errno != EINTR)
                die("ppoll");
            continue;
        }
        for (int i = 0; i < 2; i++) {
            if (fds[i].revents & (POLLERR | POLLHUP | POLLNVAL)) {
                errno = EIO;
                die(dirs[i].name);
            }
        }
        if (fds[2].revents) {
            ssize_t n = read(STDIN_FILENO, pending + pending_len, sizeof pending - 1 - pending_len);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR))
                break; /* our parent went away */
            if (n > 0) {
                pending_len += (size_t)n;
                pending[pending_len] = '\0';
                char *start = pending, *end;
                while ((end = strchr(start, '\n')) != NULL) {
                    *end = '\0';
                    command(start);
                    start = end + 1;
                }
                pending_len -= (size_t)(start - pending);
                memmove(pending, start, pending_len);
                if (pending_len == sizeof pending - 1)
                    pending_len = 0; /* a line too long to be a command: drop it */
            }
        }
    }
    print_stats(dirs, 2);
    return 0;

usage:
    fprintf(stderr,
            "usage: %s -a DEV_A -b DEV_B -r RATE_BIT_S -d ONE_WAY_DELAY_US -q QUEUE_BYTES [-t TICK_US] [-l LOSS] "
            "[-s SEED] [-w]\n",
            argv[0]);
    return 2;
}
