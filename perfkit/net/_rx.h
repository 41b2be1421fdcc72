/* What _rx.c (reads on the event loop) and _rxthread.c (reads on a thread of their own) share:
 * the clocks, and the kernel's receive stamp of a recvmsg turned into a wait. */
#ifndef PERFKIT_RX_H
#define PERFKIT_RX_H

#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#ifndef SCM_TIMESTAMPNS
#define SCM_TIMESTAMPNS 35 /* the asm-generic value (x86, arm, riscv) */
#endif

#define READ_SIZE (64 * 1024)
#define MAX_WAIT_NS (60LL * 1000000000LL)
#define BUCKET_NS 100000LL

/* control space for one SCM_TIMESTAMPNS */
typedef union {
    char buf[CMSG_SPACE(sizeof(struct timespec))];
    struct cmsghdr align;
} rx_control;

static inline int64_t
rx_ns_of(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return (int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* How long the bytes of a read waited in the kernel (ns, from its SCM_TIMESTAMPNS), or -1 where the
 * read carried no stamp or the wait is not one (beyond MAX_WAIT_NS: the wall clock was stepped). */
static inline int64_t
rx_wait_of(struct msghdr *msg)
{
    for (struct cmsghdr *c = CMSG_FIRSTHDR(msg); c != NULL; c = CMSG_NXTHDR(msg, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_TIMESTAMPNS &&
            c->cmsg_len >= CMSG_LEN(sizeof(struct timespec))) {
            struct timespec ts;
            memcpy(&ts, CMSG_DATA(c), sizeof(ts));
            int64_t wait = rx_ns_of(CLOCK_REALTIME) - ((int64_t)ts.tv_sec * 1000000000LL + ts.tv_nsec);
            return (wait >= 0 && wait < MAX_WAIT_NS) ? wait : -1;
        }
    }
    return -1;
}

/* c: n int64 slots, n - 2 buckets of BUCKET_NS, one beyond, then the longest wait. */
static inline void
rx_count_wait(int64_t *c, Py_ssize_t slots, int64_t wait)
{
    if (slots < 3)
        return;
    Py_ssize_t over = slots - 2;
    Py_ssize_t i = (Py_ssize_t)(wait / BUCKET_NS);
    c[i < over ? i : over] += 1;
    if (wait > c[slots - 1])
        c[slots - 1] = wait;
}

/* defined in _rxthread.c: adds the Reader type to the module */
int rx_add_reader_type(PyObject *module);

/* _rx.c: the compiled chunk path (take_events) on len bytes at d; see there. */
int rx_take_events(const char *d, Py_ssize_t len, PyObject *rec, PyObject *t, PyObject *tokens, Py_ssize_t *out);

#endif
