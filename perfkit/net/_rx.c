/* The steps every streamed chunk goes through, compiled: reading a socket with its kernel receive
 * stamp, undoing the chunked framing of the common read (whole HTTP chunks of one SSE event each),
 * and applying the common OpenAI chunk to the request's record.
 *
 * perfkit.net.transport and perfkit.client.fasthttp do the same in Python when this module is not
 * built (no compiler, not Linux) or a read path asks for Python (ReadPath(compiled=False)); the tests
 * hold the two to the same answers.  What an OpenAI chunk means is not written here: the names of its
 * fields and of the record's attributes, and the Python handlers of every other shape, come from
 * perfkit.client.events through configure().  Anything out of the common shape goes to those
 * handlers, which handle every case.
 *
 * Nothing here releases the GIL: the socket is non-blocking, and a static read buffer is then
 * used by one call at a time.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "_rx.h"

static char read_buf[READ_SIZE];

/* hist: a writable buffer of int64 counts: n buckets of BUCKET_NS, one beyond, then the longest wait. */
static void
note_wait(Py_buffer *view, int64_t wait)
{
    rx_count_wait((int64_t *)view->buf, view->len / (Py_ssize_t)sizeof(int64_t), wait);
}

PyDoc_STRVAR(recv_stamped_doc,
"recv_stamped(fd, hist, /)\n--\n\n"
"Read up to 64 KiB from the non-blocking socket ``fd`` with ``recvmsg``.\n\n"
"Returns ``(data, t_ns)``: ``t_ns`` is when the kernel received the bytes, on the\n"
"``CLOCK_MONOTONIC`` clock (``time.perf_counter_ns`` on Linux), or when the read\n"
"returned where it carried no usable stamp.  ``data`` is empty at the end of the\n"
"stream.  None when there was nothing to read (EAGAIN, EINTR); OSError otherwise.\n"
"``hist`` (None or a writable int64 buffer) counts the stamped reads' waits.");

static PyObject *
recv_stamped(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "recv_stamped(fd, hist) takes 2 arguments");
        return NULL;
    }
    long fd = PyLong_AsLong(args[0]);
    if (fd == -1 && PyErr_Occurred())
        return NULL;
    if (fd < 0 || fd > INT32_MAX) {
        PyErr_SetString(PyExc_ValueError, "recv_stamped: not a file descriptor");
        return NULL;
    }
    /* the histogram is taken before the read: a bad one must not cost bytes already off the socket */
    Py_buffer view;
    int have_hist = args[1] != Py_None;
    if (have_hist && PyObject_GetBuffer(args[1], &view, PyBUF_WRITABLE) < 0)
        return NULL;
    rx_control control;
    struct iovec iov = {read_buf, READ_SIZE};
    struct msghdr msg;
    memset(&msg, 0, sizeof(msg));
    msg.msg_iov = &iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.buf;
    msg.msg_controllen = sizeof(control.buf);
    ssize_t n = recvmsg((int)fd, &msg, 0);
    if (n < 0) {
        int err = errno;
        if (have_hist)
            PyBuffer_Release(&view);
        if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR)
            Py_RETURN_NONE;
        errno = err;
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    int64_t t = rx_ns_of(CLOCK_MONOTONIC);
    int64_t wait = rx_wait_of(&msg);
    if (wait >= 0) {
        t -= wait;
        if (have_hist)
            note_wait(&view, wait);
    }
    if (have_hist)
        PyBuffer_Release(&view);
    PyObject *data = PyBytes_FromStringAndSize(read_buf, n);
    if (data == NULL)
        return NULL;
    PyObject *when = PyLong_FromLongLong(t);
    if (when == NULL) {
        Py_DECREF(data);
        return NULL;
    }
    PyObject *out = PyTuple_New(2);
    if (out == NULL) {
        Py_DECREF(data);
        Py_DECREF(when);
        return NULL;
    }
    PyTuple_SET_ITEM(out, 0, data);
    PyTuple_SET_ITEM(out, 1, when);
    return out;
}

static int
hex_value(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* ---- the events of a read ------------------------------------------------------------------------- */

static PyObject *json_loads;   /* orjson.loads (or json.loads) */
static PyObject *slow_event;   /* perfkit.client.events.handle_event: a payload that is not JSON */
static PyObject *slow_obj;     /* perfkit.client.events.apply_event: parsed, but not the shape below */
/* the record's attributes (r_*) and the chunk's fields (s_*), named by configure() */
static PyObject *r_text_parts, *r_first_token_ns, *r_last_token_ns, *r_chunk_ns, *r_chunk_chars, *r_chunk_tokens;
static PyObject *r_prompt_tokens, *r_output_tokens, *r_finish_reason;
static PyObject *s_error, *s_usage, *s_choices, *s_finish_reason, *s_delta, *s_content, *s_reasoning_content;
static PyObject *s_text, *s_prompt_tokens, *s_completion_tokens;

/* configure()'s names, by role: the record's attributes, then the chunk's fields */
static PyObject **const name_slots[] = {
    &r_text_parts, &r_first_token_ns, &r_last_token_ns, &r_chunk_ns, &r_chunk_chars, &r_chunk_tokens,
    &r_prompt_tokens, &r_output_tokens, &r_finish_reason,
    &s_error, &s_usage, &s_choices, &s_finish_reason, &s_delta, &s_content, &s_reasoning_content, &s_text,
    &s_prompt_tokens, &s_completion_tokens};
static const char *const name_roles[] = {
    "record.text_parts", "record.first_token_ns", "record.last_token_ns", "record.chunk_ns", "record.chunk_chars",
    "record.chunk_tokens", "record.prompt_tokens", "record.output_tokens", "record.finish_reason",
    "chunk.error", "chunk.usage", "chunk.choices", "chunk.finish_reason", "chunk.delta", "chunk.content",
    "chunk.reasoning_content", "chunk.text", "chunk.prompt_tokens", "chunk.completion_tokens"};
#define N_NAMES (sizeof(name_roles) / sizeof(name_roles[0]))

PyDoc_STRVAR(configure_doc,
"configure(loads, handle_event, apply_event, names, /)\n--\n\n"
"The JSON parser; the Python handlers of an event that :func:`take_events` does not take itself:\n"
"``handle_event(rec, payload, t, tokens)`` for a payload that does not parse, ``apply_event(rec, obj,\n"
"payload, t, tokens)`` for one that parses to another shape (so it is not parsed twice); and ``names``,\n"
"a dict from each role (``record.chunk_ns``, ``chunk.choices``, ...) to the attribute or field it names.\n"
"perfkit.client.events holds all four: this module knows the shape of the common chunk, not its words.");

static PyObject *
configure(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyDict_Check(args[3])) {
        PyErr_SetString(PyExc_TypeError, "configure(loads, handle_event, apply_event, names: dict) takes 4 arguments");
        return NULL;
    }
    PyObject *found[N_NAMES];
    for (size_t k = 0; k < N_NAMES; k++) {
        PyObject *v = PyDict_GetItemString(args[3], name_roles[k]);
        if (v == NULL || !PyUnicode_Check(v)) {
            PyErr_Format(PyExc_KeyError, "configure: names has no string for the role %s", name_roles[k]);
            return NULL;
        }
        found[k] = v;
    }
    for (size_t k = 0; k < N_NAMES; k++) {
        PyObject *v = Py_NewRef(found[k]);
        PyUnicode_InternInPlace(&v);
        Py_XSETREF(*name_slots[k], v);
    }
    Py_INCREF(args[0]);
    Py_XSETREF(json_loads, args[0]);
    Py_INCREF(args[1]);
    Py_XSETREF(slow_event, args[1]);
    Py_INCREF(args[2]);
    Py_XSETREF(slow_obj, args[2]);
    Py_RETURN_NONE;
}

/* v is absent, null, or an exact int */
static int
none_or_int(PyObject *v)
{
    return v == NULL || v == Py_None || PyLong_CheckExact(v);
}

/* The common chunk: no error; one choice whose text is a non-empty string (``delta.content`` of a chat
 * chunk with no reasoning, or ``text`` of a completion chunk with no delta); ``finish_reason`` null or
 * a string; ``usage`` absent, null, or a dict whose ``prompt_tokens`` and ``completion_tokens`` are
 * absent, null or ints (vLLM's continuous usage stats).  1 with the parts set (borrowed from obj; NULL
 * where absent or null), 0 for anything else. */
typedef struct {
    PyObject *text, *finish, *prompt, *completion;
} common_t;

static int
common_shape(PyObject *obj, common_t *c)
{
    PyObject *v, *choices, *choice, *delta, *usage;
    memset(c, 0, sizeof(*c));
    if (!PyDict_CheckExact(obj))
        return 0;
    if ((v = PyDict_GetItemWithError(obj, s_error)) != NULL && v != Py_None)
        return 0;
    usage = PyDict_GetItemWithError(obj, s_usage);
    if (usage != NULL && usage != Py_None) {
        if (!PyDict_CheckExact(usage))
            return 0;
        c->prompt = PyDict_GetItemWithError(usage, s_prompt_tokens);
        c->completion = PyDict_GetItemWithError(usage, s_completion_tokens);
        if (!none_or_int(c->prompt) || !none_or_int(c->completion))
            return 0;
        if (c->prompt == Py_None)
            c->prompt = NULL;
        if (c->completion == Py_None)
            c->completion = NULL;
    }
    choices = PyDict_GetItemWithError(obj, s_choices);
    if (choices == NULL || !PyList_CheckExact(choices) || PyList_GET_SIZE(choices) != 1)
        return 0;
    choice = PyList_GET_ITEM(choices, 0);
    if (!PyDict_CheckExact(choice))
        return 0;
    if ((v = PyDict_GetItemWithError(choice, s_finish_reason)) != NULL && v != Py_None) {
        if (!PyUnicode_CheckExact(v))
            return 0;
        if (PyUnicode_GET_LENGTH(v) > 0) /* an empty one is no finish reason, as in Python */
            c->finish = v;
    }
    delta = PyDict_GetItemWithError(choice, s_delta);
    if (delta != NULL && delta != Py_None) {
        if (!PyDict_CheckExact(delta))
            return 0;
        if ((v = PyDict_GetItemWithError(delta, s_reasoning_content)) != NULL && v != Py_None)
            return 0;
        c->text = PyDict_GetItemWithError(delta, s_content);
    }
    else
        c->text = PyDict_GetItemWithError(choice, s_text);
    if (c->text == NULL || !PyUnicode_CheckExact(c->text) || PyUnicode_GET_LENGTH(c->text) == 0)
        return 0;
    return 1;
}

static int
append_attr(PyObject *rec, PyObject *name, PyObject *item)
{
    PyObject *list = PyObject_GetAttr(rec, name);
    if (list == NULL)
        return -1;
    int r = list == Py_None ? 0 : PyList_Append(list, item);
    Py_DECREF(list);
    return r;
}

/* The usage counts and the finish reason of the common chunk into the record, as _apply_event does. */
static int
apply_usage(PyObject *rec, const common_t *c)
{
    if (c->prompt != NULL && PyObject_SetAttr(rec, r_prompt_tokens, c->prompt) < 0)
        return -1;
    if (c->completion != NULL && PyObject_SetAttr(rec, r_output_tokens, c->completion) < 0)
        return -1;
    if (c->finish != NULL && PyObject_SetAttr(rec, r_finish_reason, c->finish) < 0)
        return -1;
    return 0;
}

/* The chunk's tokens: the usage count less the last one (tokens[0]), which becomes this one; None
 * without a count. */
static int
count_tokens(PyObject *rec, PyObject *completion, PyObject *tokens)
{
    if (completion == NULL)
        return append_attr(rec, r_chunk_tokens, Py_None);
    if (!PyList_CheckExact(tokens) || PyList_GET_SIZE(tokens) < 1) {
        PyErr_SetString(PyExc_TypeError, "take_events: tokens must be a list of one int");
        return -1;
    }
    PyObject *k = PyNumber_Subtract(completion, PyList_GET_ITEM(tokens, 0));
    if (k == NULL)
        return -1;
    int r = append_attr(rec, r_chunk_tokens, k);
    Py_DECREF(k);
    if (r < 0)
        return -1;
    Py_INCREF(completion);
    return PyList_SetItem(tokens, 0, completion);
}

/* One of the Python handlers: its answer (whether [DONE] came) as 1 or 0, -1 on error. */
static int
call_handler(PyObject *handler, PyObject *const *args, size_t nargs)
{
    PyObject *r = PyObject_Vectorcall(handler, args, nargs, NULL);
    if (r == NULL)
        return -1;
    int done = PyObject_IsTrue(r);
    Py_DECREF(r);
    return done;
}

/* One event's payload into the record, as _handle_event would: 1 at [DONE], 0 otherwise, -1 on error. */
static int
one_payload(PyObject *rec, const char *p, Py_ssize_t n, PyObject *t, PyObject *tokens)
{
    if (n == 6 && memcmp(p, "[DONE]", 6) == 0)
        return 1;
    PyObject *payload = PyBytes_FromStringAndSize(p, n);
    if (payload == NULL)
        return -1;
    PyObject *obj = PyObject_CallOneArg(json_loads, payload);
    if (obj == NULL) { /* not JSON (or a parser failure): the Python handler records it */
        PyErr_Clear();
        PyObject *args[4] = {rec, payload, t, tokens};
        int done = call_handler(slow_event, args, 4);
        Py_DECREF(payload);
        return done;
    }
    common_t c;
    if (!common_shape(obj, &c)) {
        if (PyErr_Occurred()) {
            Py_DECREF(obj);
            Py_DECREF(payload);
            return -1;
        }
        PyObject *args[5] = {rec, obj, payload, t, tokens};
        int done = call_handler(slow_obj, args, 5);
        Py_DECREF(obj);
        Py_DECREF(payload);
        return done;
    }
    Py_DECREF(payload);
    int rc = -1;
    PyObject *chars = NULL, *first = NULL;
    if (apply_usage(rec, &c) < 0)
        goto out;
    if (append_attr(rec, r_text_parts, c.text) < 0)
        goto out;
    if ((first = PyObject_GetAttr(rec, r_first_token_ns)) == NULL)
        goto out;
    if (first == Py_None && PyObject_SetAttr(rec, r_first_token_ns, t) < 0)
        goto out;
    if (PyObject_SetAttr(rec, r_last_token_ns, t) < 0 || append_attr(rec, r_chunk_ns, t) < 0)
        goto out;
    if ((chars = PyLong_FromSsize_t(PyUnicode_GET_LENGTH(c.text))) == NULL ||
        append_attr(rec, r_chunk_chars, chars) < 0)
        goto out;
    if (count_tokens(rec, c.completion, tokens) < 0) /* c's parts are borrowed from obj, held till out */
        goto out;
    rc = 0;
out:
    Py_XDECREF(chars);
    Py_XDECREF(first);
    Py_DECREF(obj);
    return rc;
}

PyDoc_STRVAR(take_events_doc,
"take_events(data, rec, t, tokens, /)\n--\n\n"
"Take the leading complete HTTP chunks of ``data`` that each hold exactly one event\n"
"``data: PAYLOAD\\n\\n`` (no line break in the payload) and apply each payload to ``rec``\n"
"as ``_handle_event(rec, payload, t, tokens)`` would, the common chunk shape here and any\n"
"other through it.  Stops after ``[DONE]`` and at the first chunk that is incomplete or\n"
"not of that form.  Returns ``(pos, done)``: the bytes taken, and whether ``[DONE]`` came.\n"
"The caller must be at the start of a chunk with no event part-way.");

/* What take_events does, on len bytes at d: the bytes taken into *pos; 1 when [DONE] came, 0 when it
 * did not, -1 with an exception set.  Also the reading thread's take() calls it (_rxthread.c). */
int
rx_take_events(const char *d, Py_ssize_t len, PyObject *rec, PyObject *t, PyObject *tokens, Py_ssize_t *out)
{
    if (json_loads == NULL || slow_event == NULL || slow_obj == NULL || s_choices == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "take_events: configure() has not been called");
        return -1;
    }
    Py_ssize_t pos = 0;
    int done = 0;
    while (pos < len && !done) {
        Py_ssize_t i = pos, size = 0;
        while (i < len && i - pos <= 8) {
            int v = hex_value(d[i]);
            if (v < 0)
                break;
            size = size * 16 + v;
            i++;
        }
        Py_ssize_t digits = i - pos;
        if (digits == 0 || digits > 8 || size < 8 || i + 2 + size + 2 > len || d[i] != '\r' || d[i + 1] != '\n')
            break;
        const char *c = d + i + 2; /* the chunk: "data: " PAYLOAD "\n\n", then CRLF */
        if (memcmp(c, "data: ", 6) != 0 || memcmp(c + size - 2, "\n\n\r\n", 4) != 0)
            break;
        const char *p = c + 6;
        Py_ssize_t plen = size - 8;
        if (memchr(p, '\n', plen) != NULL || memchr(p, '\r', plen) != NULL)
            break;
        int r = one_payload(rec, p, plen, t, tokens);
        if (r < 0) {
            *out = pos;
            return -1;
        }
        done = r;
        pos = i + 2 + size + 2;
    }
    *out = pos;
    return done;
}

static PyObject *
take_events(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 4 || !PyBytes_Check(args[0])) {
        PyErr_SetString(PyExc_TypeError, "take_events(data: bytes, rec, t, tokens)");
        return NULL;
    }
    Py_ssize_t pos = 0;
    int done = rx_take_events(PyBytes_AS_STRING(args[0]), PyBytes_GET_SIZE(args[0]), args[1], args[2], args[3], &pos);
    if (done < 0)
        return NULL;
    PyObject *n = PyLong_FromSsize_t(pos);
    if (n == NULL)
        return NULL;
    PyObject *out = PyTuple_New(2);
    if (out == NULL) {
        Py_DECREF(n);
        return NULL;
    }
    PyTuple_SET_ITEM(out, 0, n);
    PyTuple_SET_ITEM(out, 1, Py_NewRef(done ? Py_True : Py_False));
    return out;
}

PyDoc_STRVAR(send_each_doc,
"send_each(fd, payloads, start, stop, stamps, /)\n--\n\n"
"Send ``payloads[start:stop]`` (a list of bytes) to the non-blocking socket ``fd``, one send each,\n"
"back to back, noting in ``stamps`` (a writable int64 buffer of at least ``stop - start`` slots)\n"
"the CLOCK_MONOTONIC time just before each send.  Stops at the first payload the kernel does not\n"
"take whole (full, or failed: the caller's transport then writes the rest, and buffers or closes).\n"
"Returns ``(k, sent)``: the first payload not sent whole (``stop`` when all were) and how many of\n"
"its bytes went.  Slots ``0 .. k - start`` are written (one more than sent when ``k < stop``).\n\n"
"The ground-truth server's burst of chunks (perfkit.sim.exact), with no Python between sends.");

static PyObject *
send_each(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5 || !PyList_CheckExact(args[1])) {
        PyErr_SetString(PyExc_TypeError, "send_each(fd, payloads: list, start, stop, stamps)");
        return NULL;
    }
    long fd = PyLong_AsLong(args[0]);
    Py_ssize_t start = PyLong_AsSsize_t(args[2]), stop = PyLong_AsSsize_t(args[3]);
    if (PyErr_Occurred())
        return NULL;
    if (fd < 0 || fd > INT32_MAX || start < 0 || stop < start || stop > PyList_GET_SIZE(args[1])) {
        PyErr_SetString(PyExc_ValueError, "send_each: bad descriptor or range");
        return NULL;
    }
    Py_buffer view;
    if (PyObject_GetBuffer(args[4], &view, PyBUF_WRITABLE) < 0)
        return NULL;
    if (view.len / (Py_ssize_t)sizeof(int64_t) < stop - start) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "send_each: stamps has fewer slots than payloads to send");
        return NULL;
    }
    for (Py_ssize_t k = start; k < stop; k++) {
        if (!PyBytes_CheckExact(PyList_GET_ITEM(args[1], k))) {
            PyBuffer_Release(&view);
            PyErr_SetString(PyExc_TypeError, "send_each: payloads must be bytes");
            return NULL;
        }
    }
    int64_t *stamps = (int64_t *)view.buf;
    Py_ssize_t k = start, sent = 0;
    for (; k < stop; k++) {
        PyObject *p = PyList_GET_ITEM(args[1], k);
        Py_ssize_t len = PyBytes_GET_SIZE(p);
        stamps[k - start] = rx_ns_of(CLOCK_MONOTONIC);
        ssize_t n;
        do
            n = send((int)fd, PyBytes_AS_STRING(p), (size_t)len, MSG_NOSIGNAL);
        while (n < 0 && errno == EINTR);
        if (n < len) {
            sent = n > 0 ? n : 0;
            break;
        }
    }
    PyBuffer_Release(&view);
    return Py_BuildValue("(nn)", k, sent);
}

static PyMethodDef rx_methods[] = {
    {"recv_stamped", (PyCFunction)(void (*)(void))recv_stamped, METH_FASTCALL, recv_stamped_doc},
    {"configure", (PyCFunction)(void (*)(void))configure, METH_FASTCALL, configure_doc},
    {"take_events", (PyCFunction)(void (*)(void))take_events, METH_FASTCALL, take_events_doc},
    {"send_each", (PyCFunction)(void (*)(void))send_each, METH_FASTCALL, send_each_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef rx_module = {
    PyModuleDef_HEAD_INIT, "_rx",
    "Compiled reads with kernel receive stamps, the common chunks of a read, and bursts of sends (see _rx.c).",
    -1, rx_methods,
};

PyMODINIT_FUNC
PyInit__rx(void)
{
    PyObject *m = PyModule_Create(&rx_module);
    if (m == NULL)
        return NULL;
    if (PyModule_AddIntConstant(m, "READ_SIZE", READ_SIZE) < 0 ||
        PyModule_AddIntConstant(m, "BUCKET_NS", (long)BUCKET_NS) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    if (rx_add_reader_type(m) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
