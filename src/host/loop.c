#include "loop.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "cojp/engine.h"
#include "util.h"

/* Self-pipe: the handler only writes the signal number (async-signal
 * safe); the loop reads it in its own time. */
static int sig_wr = -1;

static void on_signal(int signo)
{
    int e = errno;
    unsigned char b = (unsigned char)signo;
    if (sig_wr >= 0)
        (void)!write(sig_wr, &b, 1);
    errno = e;
}

int cj_loop_init(cj_loop_t *l)
{
    int p[2];
    struct sigaction sa;
    memset(l, 0, sizeof *l);
    if (pipe(p) != 0)
        return -1;
    for (int i = 0; i < 2; i++) {
        fcntl(p[i], F_SETFL, fcntl(p[i], F_GETFL) | O_NONBLOCK);
        fcntl(p[i], F_SETFD, FD_CLOEXEC);
    }
    sig_wr = p[1];
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGUSR1, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    l->pfd[0].fd = p[0];
    l->pfd[0].events = POLLIN;
    l->n = 1;
    return 0;
}

int cj_loop_add(cj_loop_t *l, int fd, cj_loop_fd_fn fn, void *arg)
{
    if (l->n > CJ_LOOP_MAX_FDS)
        return -1;
    l->pfd[l->n].fd = fd;
    l->pfd[l->n].events = POLLIN;
    l->fn[l->n] = fn;
    l->arg[l->n] = arg;
    l->n++;
    return 0;
}

void cj_loop_set_tick(cj_loop_t *l, cj_loop_tick_fn fn, void *arg)
{
    l->tick = fn;
    l->tick_arg = arg;
}

void cj_loop_set_report(cj_loop_t *l, cj_loop_report_fn fn, void *arg,
                        uint64_t every_ms)
{
    l->report = fn;
    l->report_arg = arg;
    l->report_every = every_ms;
    l->report_next = every_ms ? cj_host_now() + every_ms : CJ_TIME_NEVER;
}

void cj_loop_stop(cj_loop_t *l)
{
    l->stop = 1;
}

int cj_loop_run(cj_loop_t *l, uint64_t deadline)
{
    for (;;) {
        uint64_t now = cj_host_now(), next = deadline;
        int wait, ready;

        if (l->tick) {
            uint64_t t = l->tick(l->tick_arg, now);
            if (t < next)
                next = t;
        }
        if (l->report && now >= l->report_next) {
            l->report(l->report_arg);
            l->report_next = now + l->report_every;
        }
        if (l->report && l->report_next < next)
            next = l->report_next;
        if (l->stop)
            return CJ_LOOP_STOPPED;
        if (now >= deadline)
            return CJ_LOOP_DEADLINE;
        if (next == CJ_TIME_NEVER)
            wait = -1;
        else if (next <= now)
            wait = 0;
        else
            wait = next - now > 60000 ? 60000 : (int)(next - now);
        ready = poll(l->pfd, (nfds_t)l->n, wait);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        if (l->pfd[0].revents & POLLIN) {
            unsigned char b = 0;
            if (read(l->pfd[0].fd, &b, 1) == 1 && b == SIGUSR1) {
                if (l->report)
                    l->report(l->report_arg);
            } else if (b) {
                return b;
            }
        }
        now = cj_host_now();
        for (int i = 1; ready > 0 && i < l->n; i++)
            if (l->pfd[i].revents & (POLLIN | POLLERR))
                l->fn[i](l->arg[i], l->pfd[i].fd, now);
        if (l->stop)
            return CJ_LOOP_STOPPED;
    }
}

void cj_loop_close(cj_loop_t *l)
{
    signal(SIGINT, SIG_DFL);
    signal(SIGTERM, SIG_DFL);
    signal(SIGUSR1, SIG_DFL);
    if (sig_wr >= 0)
        close(sig_wr);
    sig_wr = -1;
    if (l->n > 0 && l->pfd[0].fd >= 0)
        close(l->pfd[0].fd);
    l->n = 0;
}
