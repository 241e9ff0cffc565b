/* rusage_exec OUT CMD [ARGS...]: run CMD as the child of this small process and write its rusage to OUT.
 *
 * Why not wait4() from the benchmark's Python process directly: Linux keeps the RSS high-water mark of
 * the memory map a process had before exec(), so a tool forked from a 50 MB Python reports >= 50 MB as
 * its peak RSS. Forked from this process, whose own map is tiny, the tool's ru_maxrss is its own.
 * SIGTERM and SIGINT are passed on to CMD. OUT gets "user_s system_s maxrss_kb"; the exit status is
 * CMD's (128 + signal if it was killed).
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

static volatile pid_t child;

static void forward(int sig) {
    if (child > 0) kill(child, sig);
}

int main(int argc, char **argv) {
    if (argc < 3) {
        fprintf(stderr, "usage: %s OUT CMD [ARGS...]\n", argv[0]);
        return 2;
    }
    struct sigaction sa = {0};
    sa.sa_handler = forward;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    child = fork();
    if (child < 0) {
        perror("fork");
        return 2;
    }
    if (child == 0) {
        signal(SIGTERM, SIG_DFL);
        signal(SIGINT, SIG_DFL);
        execvp(argv[2], argv + 2);
        perror(argv[2]);
        _exit(127);
    }
    int status;
    struct rusage ru;
    while (wait4(child, &status, 0, &ru) < 0) {
        if (errno != EINTR) { /* EINTR: a forwarded signal; keep waiting */
            perror("wait4");
            return 2;
        }
    }
    FILE *out = fopen(argv[1], "w");
    if (out == NULL) {
        perror(argv[1]);
        return 2;
    }
    fprintf(out, "%ld.%06ld %ld.%06ld %ld\n", (long)ru.ru_utime.tv_sec, (long)ru.ru_utime.tv_usec,
            (long)ru.ru_stime.tv_sec, (long)ru.ru_stime.tv_usec, ru.ru_maxrss);
    fclose(out);
    return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}
