/* _rx.Reader: one thread that reads every registered socket the moment its bytes arrive, with the
 * kernel's receive stamp, and queues the reads for the event loop to take in batches.
 *
 * A stamp is exact only for a read that takes one packet: when the event loop is late and two chunks
 * of a stream wait in the socket, one read takes both and both get the later one's stamp.  On one
 * core at 512 streams the loop is late often (every read costs it a callback, a parse and a record
 * update).  This thread does nothing but epoll_wait and recvmsg, never takes the GIL, and the
 * scheduler runs it as soon as a socket wakes it, so chunks are taken one by one however far behind
 * the loop is; the loop then handles a batch of reads per wake-up instead of one callback each.
 *
 * Two things keep it cheap and prompt.  After a round of reads it sleeps until gap_ns after the round
 * began, so that one wake-up serves every socket that turned readable meanwhile (a chunk waits at most
 * about that long, and only chunks of one stream closer than that share a read).  And where permitted it
 * runs SCHED_FIFO: under the fair scheduler, a thread woken while the event loop's thread is busy on the
 * same core waited up to several ms for its turn (p99 5-8 ms at 512 streams on the development VM, which
 * is as long as half the gap between a stream's chunks); realtime, it runs at once.  The gap, and a
 * sleep of at least half of it after every round, bound the core it can take.
 *
 * Records in the queue: rec_t, then `len` bytes padded to 8.  A key is (generation << 32 | fd): a
 * socket removed (or at its end) gets generation 0, so a read queued or woken for it earlier can be
 * told from one for a new socket that reuses the descriptor.  The thread holds `mu` while it reads,
 * so once remove() returns it will not touch that descriptor again, and the caller may close it.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "_rx.h"

#define MAX_PENDING ((size_t)64 * 1024 * 1024) /* queued bytes past which the thread waits for a take */
#define KEEP_SPARE ((size_t)4 * 1024 * 1024)    /* a drained buffer larger than this is given back */
#define STOP_KEY UINT64_MAX
#define MAX_EVENTS 64

typedef struct {
    uint64_t key;
    int64_t t;    /* when the kernel received the bytes, CLOCK_MONOTONIC ns (the read's time if unstamped) */
    int64_t wait; /* ns the bytes waited before the read, -1 where there was no stamp */
    int64_t len;  /* bytes that follow; 0: end of stream; < 0: -errno of a failed read */
} rec_t;

typedef struct {
    PyObject_HEAD
    int epfd, wake_fd, stop_fd;
    int started, stopping, taking;
    pid_t owner;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t room;
    char *buf;
    size_t len, cap; /* the queue the thread appends to */
    char *spare;
    size_t spare_len, spare_cap; /* the queue being taken */
    int signalled;                 /* wake_fd written since the last take */
    int64_t gap_ns;                /* the least time between two rounds of reads */
    int realtime;                  /* the thread runs SCHED_FIFO */
    uint32_t *gens;
    size_t ngens;
    uint32_t next_gen;
} Reader;

static void
signal_loop(Reader *r) /* mu held */
{
    if (r->len > 0 && !r->signalled) {
        uint64_t one = 1;
        if (write(r->wake_fd, &one, sizeof(one)) == (ssize_t)sizeof(one))
            r->signalled = 1;
    }
}

static int
make_room(Reader *r, size_t need) /* mu held; 0 or -1 when memory ran out */
{
    if (need <= r->cap)
        return 0;
    size_t cap = r->cap ? r->cap : 256 * 1024;
    while (cap < need)
        cap *= 2;
    char *b = realloc(r->buf, cap);
    if (b == NULL)
        return -1;
    r->buf = b;
    r->cap = cap;
    return 0;
}

static void
read_one(Reader *r, uint64_t key) /* mu held */
{
    while (r->len >= MAX_PENDING && !r->stopping) {
        signal_loop(r);
        pthread_cond_wait(&r->room, &r->mu);
    }
    int fd = (int)(uint32_t)key;
    uint32_t gen = (uint32_t)(key >> 32);
    if (r->stopping || (size_t)fd >= r->ngens || r->gens[fd] != gen || gen == 0)
        return;
    if (make_room(r, r->len + sizeof(rec_t) + READ_SIZE) < 0)
        return; /* level-triggered: the socket is offered again */
    rec_t *h = (rec_t *)(r->buf + r->len);
    rx_control control;
    struct iovec iov = {r->buf + r->len + sizeof(rec_t), READ_SIZE};
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof(control.buf);
    ssize_t got = recvmsg(fd, &msg, 0);
    int err = errno;
    if (got < 0 && (err == EAGAIN || err == EWOULDBLOCK || err == EINTR))
        return;
    int64_t t = rx_ns_of(CLOCK_MONOTONIC);
    h->key = key;
    if (got > 0) {
        int64_t wait = rx_wait_of(&msg);
        h->t = wait >= 0 ? t - wait : t;
        h->wait = wait;
        h->len = got;
        r->len += sizeof(rec_t) + (((size_t)got + 7) & ~(size_t)7);
        return;
    }
    h->t = t;
    h->wait = -1;
    h->len = got == 0 ? 0 : -(int64_t)err;
    r->len += sizeof(rec_t);
    epoll_ctl(r->epfd, EPOLL_CTL_DEL, fd, NULL); /* nothing more will come: the loop closes it */
    r->gens[fd] = 0;
}

/* Wait until gap_ns after the round began (and at least half gap_ns from now), so that the next round
 * finds more sockets ready and the thread wakes less.  (Waking it early whenever the loop had taken
 * every read made more rounds of smaller reads: 10-11 us of CPU a chunk at full speed against 8.) */
static void
nap(Reader *r, int64_t round)
{
    int64_t now = rx_ns_of(CLOCK_MONOTONIC);
    int64_t next = round + r->gap_ns, least = now + r->gap_ns / 2;
    if (next < least) /* a long round: still leave the core to others for a while */
        next = least;
    struct timespec until = {(time_t)(next / 1000000000LL), (long)(next % 1000000000LL)};
    while (clock_nanosleep(CLOCK_MONOTONIC, TIMER_ABSTIME, &until, NULL) == EINTR) {
    }
}

static void *
reader_main(void *arg)
{
    Reader *r = arg;
    struct epoll_event evs[MAX_EVENTS];
    prctl(PR_SET_TIMERSLACK, 1000UL, 0, 0, 0); /* sleep gap_ns, not gap_ns + the default 50 us */
    for (;;) {
        int n = epoll_wait(r->epfd, evs, MAX_EVENTS, -1);
        if (n < 0 && errno != EINTR)
            break;
        int64_t round = rx_ns_of(CLOCK_MONOTONIC);
        int stop = 0;
        pthread_mutex_lock(&r->mu);
        for (int i = 0; i < n && !stop; i++) {
            if (evs[i].data.u64 == STOP_KEY)
                stop = 1;
            else
                read_one(r, evs[i].data.u64);
        }
        stop |= r->stopping;
        signal_loop(r);
        pthread_mutex_unlock(&r->mu);
        if (stop)
            break;
        if (n > 0 && r->gap_ns > 0)
            nap(r, round);
    }
    return NULL;
}

static void
reader_stop(Reader *r)
{
    if (r->started && r->owner == getpid()) {
        pthread_mutex_lock(&r->mu);
        r->stopping = 1;
        pthread_cond_broadcast(&r->room);
        pthread_mutex_unlock(&r->mu);
        uint64_t one = 1;
        if (write(r->stop_fd, &one, sizeof(one)) < 0) { /* the thread also sees `stopping` */
        }
        Py_BEGIN_ALLOW_THREADS
        pthread_join(r->thread, NULL);
        Py_END_ALLOW_THREADS
    }
    r->started = 0; /* in a forked child the thread never existed there: nothing to join */
    int *fds[] = {&r->epfd, &r->wake_fd, &r->stop_fd};
    for (size_t k = 0; k < 3; k++) {
        if (*fds[k] >= 0)
            close(*fds[k]);
        *fds[k] = -1;
    }
}

static PyObject *
reader_new(PyTypeObject *type, PyObject *args, PyObject *kwds)
{
    static char *kwlist[] = {"gap_ns", "realtime", NULL};
    long long gap_ns = 0;
    int realtime = 0;
    if (!PyArg_ParseTupleAndKeywords(args, kwds, "|Lp:Reader", kwlist, &gap_ns, &realtime))
        return NULL;
    if (realtime && gap_ns < 10000) {
        PyErr_SetString(PyExc_ValueError, "Reader: a realtime thread needs gap_ns >= 10000, or it could hold the core");
        return NULL;
    }
    if (gap_ns < 0 || gap_ns > 1000000000LL) {
        PyErr_SetString(PyExc_ValueError, "Reader: gap_ns must be between 0 and 1e9 (ns)");
        return NULL;
    }
    Reader *r = (Reader *)type->tp_alloc(type, 0);
    if (r == NULL)
        return NULL;
    r->gap_ns = gap_ns;
    r->epfd = r->wake_fd = r->stop_fd = -1;
    r->owner = getpid();
    pthread_mutex_init(&r->mu, NULL);
    pthread_cond_init(&r->room, NULL);
    r->epfd = epoll_create1(EPOLL_CLOEXEC);
    r->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    r->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = STOP_KEY};
    if (r->epfd < 0 || r->wake_fd < 0 || r->stop_fd < 0 || epoll_ctl(r->epfd, EPOLL_CTL_ADD, r->stop_fd, &ev) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
        Py_DECREF(r);
        return NULL;
    }
    /* the thread takes no signals: Python's handlers run on the main thread */
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    int rc = pthread_create(&r->thread, NULL, reader_main, r);
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    if (rc != 0) {
        errno = rc;
        PyErr_SetFromErrno(PyExc_OSError);
        Py_DECREF(r);
        return NULL;
    }
    r->started = 1;
    if (realtime) { /* where permitted (root, CAP_SYS_NICE or RLIMIT_RTPRIO); else it stays as it is */
        struct sched_param sp = {.sched_priority = 1};
        r->realtime = pthread_setschedparam(r->thread, SCHED_FIFO, &sp) == 0;
    }
    return (PyObject *)r;
}

static void
reader_dealloc(Reader *r)
{
    reader_stop(r);
    pthread_mutex_destroy(&r->mu);
    pthread_cond_destroy(&r->room);
    free(r->buf);
    free(r->spare);
    free(r->gens);
    Py_TYPE(r)->tp_free((PyObject *)r);
}

static int
key_parts(PyObject *arg, int *fd, uint32_t *gen)
{
    unsigned long long key = PyLong_AsUnsignedLongLong(arg);
    if (key == (unsigned long long)-1 && PyErr_Occurred())
        return -1;
    *fd = (int)(uint32_t)key;
    *gen = (uint32_t)(key >> 32);
    return 0;
}

static int
check_open(Reader *r)
{
    if (r->epfd < 0) {
        PyErr_SetString(PyExc_ValueError, "Reader is closed");
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(add_doc, "add(fd, /)\n--\n\nRead the non-blocking socket ``fd`` from now on; returns its key.");

static PyObject *
reader_add(Reader *r, PyObject *arg)
{
    long fd = PyLong_AsLong(arg);
    if (fd == -1 && PyErr_Occurred())
        return NULL;
    if (fd < 0 || fd > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "Reader.add: not a file descriptor");
        return NULL;
    }
    if (check_open(r) < 0)
        return NULL;
    PyObject *out = NULL;
    pthread_mutex_lock(&r->mu);
    if ((size_t)fd >= r->ngens) {
        size_t n = (size_t)fd + 1 > 2 * r->ngens ? (size_t)fd + 1 : 2 * r->ngens;
        uint32_t *g = realloc(r->gens, n * sizeof(uint32_t));
        if (g == NULL) {
            pthread_mutex_unlock(&r->mu);
            return PyErr_NoMemory();
        }
        memset(g + r->ngens, 0, (n - r->ngens) * sizeof(uint32_t));
        r->gens = g;
        r->ngens = n;
    }
    if (++r->next_gen == 0)
        r->next_gen = 1;
    uint64_t key = ((uint64_t)r->next_gen << 32) | (uint32_t)fd;
    struct epoll_event ev = {.events = EPOLLIN, .data.u64 = key};
    if (epoll_ctl(r->epfd, EPOLL_CTL_ADD, (int)fd, &ev) < 0) {
        PyErr_SetFromErrno(PyExc_OSError);
    }
    else {
        r->gens[fd] = r->next_gen;
        out = PyLong_FromUnsignedLongLong(key);
    }
    pthread_mutex_unlock(&r->mu);
    return out;
}

/* what: EPOLL_CTL_DEL (remove) or EPOLL_CTL_MOD with `events` (pause, resume) */
static PyObject *
reader_ctl(Reader *r, PyObject *arg, int op, uint32_t events)
{
    int fd;
    uint32_t gen;
    if (key_parts(arg, &fd, &gen) < 0 || check_open(r) < 0)
        return NULL;
    int ours = 0;
    pthread_mutex_lock(&r->mu);
    if ((size_t)fd < r->ngens && gen != 0 && r->gens[fd] == gen) {
        ours = 1;
        struct epoll_event ev = {.events = events, .data.u64 = ((uint64_t)gen << 32) | (uint32_t)fd};
        epoll_ctl(r->epfd, op, fd, &ev);
        if (op == EPOLL_CTL_DEL)
            r->gens[fd] = 0;
    }
    pthread_mutex_unlock(&r->mu);
    return PyBool_FromLong(ours);
}

PyDoc_STRVAR(remove_doc, "remove(key, /)\n--\n\n"
"Stop reading the socket of ``key``; once this returns the thread will not touch it, and it may be\n"
"closed.  False when it was no longer read (its end or an error was queued).");

static PyObject *
reader_remove(Reader *r, PyObject *arg)
{
    return reader_ctl(r, arg, EPOLL_CTL_DEL, 0);
}

PyDoc_STRVAR(pause_doc, "pause(key, /)\n--\n\nLeave the socket of ``key`` unread until resume(key).");

static PyObject *
reader_pause(Reader *r, PyObject *arg)
{
    return reader_ctl(r, arg, EPOLL_CTL_MOD, 0);
}

PyDoc_STRVAR(resume_doc, "resume(key, /)\n--\n\nRead the socket of ``key`` again.");

static PyObject *
reader_resume(Reader *r, PyObject *arg)
{
    return reader_ctl(r, arg, EPOLL_CTL_MOD, EPOLLIN);
}

static PyObject *s_last_ns; /* "last_ns": the fast path's note, on its target, of the latest read's time */

/* Append (key, t, what) to list, stealing `what`; -1 when memory ran out. */
static int
emit(PyObject *list, PyObject *key, PyObject *t, PyObject *what)
{
    if (what == NULL)
        return -1;
    PyObject *item = PyTuple_Pack(3, key, t, what);
    Py_DECREF(what);
    if (item == NULL)
        return -1;
    int r = PyList_Append(list, item);
    Py_DECREF(item);
    return r;
}

/* A read of a socket whose protocol is in `fast` (key -> (target, rec, tokens)): its whole one-event
 * chunks go to the record here (rx_take_events), without a tuple, a transport or a line of Python.  0
 * when it took the whole read.  Otherwise the key leaves `fast`, so its later reads in this batch keep
 * their order through Python, and what is left is emitted: True where [DONE] came, then the rest of the
 * read; or the exception the record's update raised.  -1 when memory ran out. */
static int
take_fast(PyObject *list, PyObject *fast, PyObject *entry, PyObject *key, PyObject *t, const char *data,
          Py_ssize_t len)
{
    Py_ssize_t pos = 0;
    int done = -1;
    Py_INCREF(entry); /* held while the key may leave the dict */
    if (PyObject_SetAttr(PyTuple_GET_ITEM(entry, 0), s_last_ns, t) == 0)
        done = rx_take_events(data, len, PyTuple_GET_ITEM(entry, 1), t, PyTuple_GET_ITEM(entry, 2), &pos);
    Py_DECREF(entry);
    if (done == 0 && pos == len)
        return 0;
    if (done < 0) {
        PyObject *type, *value, *tb;
        PyErr_Fetch(&type, &value, &tb);
        PyErr_NormalizeException(&type, &value, &tb);
        if (tb != NULL && value != NULL)
            PyException_SetTraceback(value, tb);
        Py_XDECREF(type);
        Py_XDECREF(tb);
        if (value == NULL)
            return -1;
        if (PyDict_DelItem(fast, key) < 0)
            PyErr_Clear();
        return emit(list, key, t, value);
    }
    if (PyDict_DelItem(fast, key) < 0)
        return -1;
    int rc = 0;
    if (done)
        rc = emit(list, key, t, Py_NewRef(Py_True));
    if (rc == 0 && pos < len)
        rc = emit(list, key, t, PyBytes_FromStringAndSize(data + pos, len - pos));
    return rc;
}

PyDoc_STRVAR(take_doc, "take(hist, fast=None, /)\n--\n\n"
"The reads queued since the last take, in order: a list of ``(key, t_ns, data)``.  ``t_ns`` is when\n"
"the kernel received the bytes (CLOCK_MONOTONIC); ``data`` is bytes (empty: end of stream) or, for\n"
"a failed read, its errno (an int).  A socket's end or error is its last record.  ``hist`` (None or\n"
"a writable int64 buffer, as recv_stamped's) counts the stamped reads' waits.\n\n"
"``fast`` (a dict ``key -> (target, rec, tokens)``) names the sockets whose next bytes are whole\n"
"one-event chunks to put straight into ``rec`` as take_events(data, rec, t, tokens) does, setting\n"
"``target.last_ns = t``: such a read yields no record at all.  A read it does not take whole takes its\n"
"key out of ``fast`` and yields ``True`` where [DONE] came, then the rest of the read as bytes; an\n"
"exception raised while applying it is yielded as ``data``.");

static PyObject *
reader_take(Reader *r, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs < 1 || nargs > 2) {
        PyErr_SetString(PyExc_TypeError, "take(hist, fast=None)");
        return NULL;
    }
    PyObject *arg = args[0], *fast = nargs > 1 && args[1] != Py_None ? args[1] : NULL;
    if (fast != NULL && !PyDict_CheckExact(fast)) {
        PyErr_SetString(PyExc_TypeError, "take: fast must be a dict or None");
        return NULL;
    }
    if (check_open(r) < 0)
        return NULL;
    if (r->taking) {
        PyErr_SetString(PyExc_RuntimeError, "Reader.take is not re-entrant");
        return NULL;
    }
    Py_buffer view;
    int have_hist = arg != Py_None;
    if (have_hist && PyObject_GetBuffer(arg, &view, PyBUF_WRITABLE) < 0)
        return NULL;
    r->taking = 1;
    Py_BEGIN_ALLOW_THREADS
    pthread_mutex_lock(&r->mu);
    Py_END_ALLOW_THREADS
    char *b = r->buf;
    size_t cap = r->cap;
    r->buf = r->spare;
    r->cap = r->spare_cap;
    r->spare = b;
    r->spare_cap = cap;
    r->spare_len = r->len;
    r->len = 0;
    uint64_t junk;
    if (read(r->wake_fd, &junk, sizeof(junk)) < 0) { /* EAGAIN: it was not signalled */
    }
    r->signalled = 0;
    pthread_cond_signal(&r->room);
    pthread_mutex_unlock(&r->mu);
    /* what the thread had queued is swapped out: ours until the next take */
    PyObject *list = PyList_New(0);
    size_t pos = 0;
    while (list != NULL && pos + sizeof(rec_t) <= r->spare_len) {
        const rec_t *h = (const rec_t *)(r->spare + pos);
        const char *data = r->spare + pos + sizeof(rec_t);
        pos += sizeof(rec_t) + (h->len > 0 ? (((size_t)h->len + 7) & ~(size_t)7) : 0);
        if (have_hist && h->wait >= 0)
            rx_count_wait((int64_t *)view.buf, view.len / (Py_ssize_t)sizeof(int64_t), h->wait);
        PyObject *key = PyLong_FromUnsignedLongLong(h->key);
        PyObject *t = PyLong_FromLongLong(h->t);
        int rc = key == NULL || t == NULL ? -1 : 0;
        PyObject *entry = NULL;
        if (rc == 0 && fast != NULL && h->len > 0 && PyDict_GET_SIZE(fast) > 0) {
            entry = PyDict_GetItemWithError(fast, key); /* borrowed */
            if (entry != NULL && (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 3)) {
                PyErr_SetString(PyExc_TypeError, "take: a fast entry must be (target, rec, tokens)");
                rc = -1;
            }
            else if (entry == NULL && PyErr_Occurred())
                rc = -1;
        }
        if (rc == 0 && entry != NULL)
            rc = take_fast(list, fast, entry, key, t, data, (Py_ssize_t)h->len);
        else if (rc == 0)
            rc = emit(list, key, t, h->len >= 0 ? PyBytes_FromStringAndSize(data, (Py_ssize_t)h->len)
                                                : PyLong_FromLongLong(-h->len));
        Py_XDECREF(key);
        Py_XDECREF(t);
        if (rc < 0)
            Py_CLEAR(list);
    }
    r->spare_len = 0;
    if (r->spare_cap > KEEP_SPARE) {
        free(r->spare);
        r->spare = NULL;
        r->spare_cap = 0;
    }
    r->taking = 0;
    if (have_hist)
        PyBuffer_Release(&view);
    return list;
}

static PyObject *
reader_close(Reader *r, PyObject *Py_UNUSED(ignored))
{
    reader_stop(r);
    Py_RETURN_NONE;
}

static PyObject *
reader_fileno(Reader *r, PyObject *Py_UNUSED(ignored))
{
    if (check_open(r) < 0)
        return NULL;
    return PyLong_FromLong(r->wake_fd);
}

static PyObject *
reader_get_realtime(Reader *r, void *Py_UNUSED(closure))
{
    return PyBool_FromLong(r->realtime);
}

static PyGetSetDef reader_getset[] = {
    {"realtime", (getter)reader_get_realtime, NULL, "Whether the thread runs realtime (SCHED_FIFO).", NULL},
    {NULL, NULL, NULL, NULL, NULL},
};

static PyMethodDef reader_methods[] = {
    {"add", (PyCFunction)reader_add, METH_O, add_doc},
    {"remove", (PyCFunction)reader_remove, METH_O, remove_doc},
    {"pause", (PyCFunction)reader_pause, METH_O, pause_doc},
    {"resume", (PyCFunction)reader_resume, METH_O, resume_doc},
    {"take", (PyCFunction)(void (*)(void))reader_take, METH_FASTCALL, take_doc},
    {"close", (PyCFunction)reader_close, METH_NOARGS, "close()\n--\n\nStop the thread and close its descriptors."},
    {"fileno", (PyCFunction)reader_fileno, METH_NOARGS,
     "fileno()\n--\n\nA descriptor that turns readable when reads are queued (give it to loop.add_reader)."},
    {NULL, NULL, 0, NULL},
};

static PyTypeObject ReaderType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "perfkit.net._rx.Reader",
    .tp_basicsize = sizeof(Reader),
    .tp_dealloc = (destructor)reader_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_doc = "Reader(gap_ns=0, realtime=False)\n--\n\n"
              "A thread that reads registered sockets with their kernel receive stamps (see _rxthread.c).\n"
              "After a round of reads it waits until ``gap_ns`` after the round began (and at least half\n"
              "``gap_ns``) before the next: chunks of one stream less than that apart may share a read and\n"
              "its stamp.  ``realtime`` asks for SCHED_FIFO, so that the scheduler runs the thread the moment\n"
              "it wakes rather than after the event loop's time slice; granted where permitted (see the\n"
              "``realtime`` attribute).  The gap bounds the core it can take.",
    .tp_methods = reader_methods,
    .tp_getset = reader_getset,
    .tp_new = reader_new,
};

int
rx_add_reader_type(PyObject *module)
{
    if (PyType_Ready(&ReaderType) < 0)
        return -1;
    if (s_last_ns == NULL && (s_last_ns = PyUnicode_InternFromString("last_ns")) == NULL)
        return -1;
    Py_INCREF(&ReaderType);
    if (PyModule_AddObject(module, "Reader", (PyObject *)&ReaderType) < 0) {
        Py_DECREF(&ReaderType);
        return -1;
    }
    return 0;
}
