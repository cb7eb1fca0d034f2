#!/usr/bin/python3
"""x11-close.py PID: ask the visible top-level X11 windows of process PID to close,
the way a window manager's close button does (a WM_DELETE_WINDOW client
message), so the program quits through its normal close path.

DISPLAY and XAUTHORITY are taken from the process's own environment
(/proc/PID/environ), so this works for a program under `xvfb-run -a`.
Only libX11 is needed (through ctypes). Exits 0 when at least one window
was asked to close, 1 when the process has no window, 2 on a usage or
display error.
"""
import ctypes
import ctypes.util
import os
import sys

if len(sys.argv) != 2 or sys.argv[1] in ("-h", "--help"):
    print(__doc__.strip())
    sys.exit(0 if len(sys.argv) == 2 else 2)
try:
    pid = int(sys.argv[1])
except ValueError:
    print("x11-close: %r is not a process id (usage: x11-close.py PID)" % sys.argv[1], file=sys.stderr)
    sys.exit(2)

try:
    with open("/proc/%d/environ" % pid, "rb") as f:
        for kv in f.read().split(b"\0"):
            k, _, v = kv.partition(b"=")
            if k in (b"DISPLAY", b"XAUTHORITY"):
                os.environ[k.decode()] = v.decode()
except OSError as e:
    print("x11-close: cannot read the environment of process %d: %s" % (pid, e), file=sys.stderr)
    sys.exit(2)

x = ctypes.CDLL(ctypes.util.find_library("X11") or "libX11.so.6")
Window = Atom = ctypes.c_ulong
x.XOpenDisplay.restype = ctypes.c_void_p
x.XOpenDisplay.argtypes = [ctypes.c_char_p]
x.XDefaultRootWindow.restype = Window
x.XDefaultRootWindow.argtypes = [ctypes.c_void_p]
x.XInternAtom.restype = Atom
x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
x.XQueryTree.argtypes = [ctypes.c_void_p, Window, ctypes.POINTER(Window),
                         ctypes.POINTER(Window), ctypes.POINTER(ctypes.POINTER(Window)),
                         ctypes.POINTER(ctypes.c_uint)]
x.XGetWindowProperty.argtypes = [ctypes.c_void_p, Window, Atom, ctypes.c_long, ctypes.c_long,
                                 ctypes.c_int, Atom, ctypes.POINTER(Atom),
                                 ctypes.POINTER(ctypes.c_int), ctypes.POINTER(ctypes.c_ulong),
                                 ctypes.POINTER(ctypes.c_ulong),
                                 ctypes.POINTER(ctypes.POINTER(ctypes.c_ubyte))]
x.XFree.argtypes = [ctypes.c_void_p]
x.XFetchName.argtypes = [ctypes.c_void_p, Window, ctypes.POINTER(ctypes.c_char_p)]
x.XGetWindowAttributes.argtypes = [ctypes.c_void_p, Window, ctypes.c_void_p]
x.XSendEvent.argtypes = [ctypes.c_void_p, Window, ctypes.c_int, ctypes.c_long, ctypes.c_void_p]
x.XFlush.argtypes = [ctypes.c_void_p]
x.XCloseDisplay.argtypes = [ctypes.c_void_p]


class XClientMessageEvent(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong),
                ("send_event", ctypes.c_int), ("display", ctypes.c_void_p),
                ("window", Window), ("message_type", Atom), ("format", ctypes.c_int),
                ("l", ctypes.c_long * 5)]


class XWindowAttributes(ctypes.Structure):
    _fields_ = [("x", ctypes.c_int), ("y", ctypes.c_int), ("width", ctypes.c_int),
                ("height", ctypes.c_int), ("border_width", ctypes.c_int), ("depth", ctypes.c_int),
                ("visual", ctypes.c_void_p), ("root", Window), ("c_class", ctypes.c_int),
                ("bit_gravity", ctypes.c_int), ("win_gravity", ctypes.c_int),
                ("backing_store", ctypes.c_int), ("backing_planes", ctypes.c_ulong),
                ("backing_pixel", ctypes.c_ulong), ("save_under", ctypes.c_int),
                ("colormap", ctypes.c_ulong), ("map_installed", ctypes.c_int),
                ("map_state", ctypes.c_int), ("all_event_masks", ctypes.c_long),
                ("your_event_mask", ctypes.c_long), ("do_not_propagate_mask", ctypes.c_long),
                ("override_redirect", ctypes.c_int), ("screen", ctypes.c_void_p)]


class XEvent(ctypes.Union):
    _fields_ = [("xclient", XClientMessageEvent), ("pad", ctypes.c_long * 24)]


CLIENT_MESSAGE = 33
IS_VIEWABLE = 2
XA_CARDINAL = 6
XA_ATOM = 4

dpy = x.XOpenDisplay(None)
if not dpy:
    print("x11-close: cannot open display %r" % os.environ.get("DISPLAY"), file=sys.stderr)
    sys.exit(2)
net_wm_pid = x.XInternAtom(dpy, b"_NET_WM_PID", 0)
wm_protocols = x.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
wm_delete = x.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)


def prop(win, name, kind):
    """The 32-bit items of property NAME on WIN (a list of ints)."""
    t, fmt, n, after = Atom(), ctypes.c_int(), ctypes.c_ulong(), ctypes.c_ulong()
    data = ctypes.POINTER(ctypes.c_ubyte)()
    if x.XGetWindowProperty(dpy, win, name, 0, 64, 0, kind, ctypes.byref(t), ctypes.byref(fmt),
                            ctypes.byref(n), ctypes.byref(after), ctypes.byref(data)) != 0:
        return []
    items = []
    if data and fmt.value == 32:
        items = list(ctypes.cast(data, ctypes.POINTER(ctypes.c_long))[:n.value])
    if data:
        x.XFree(data)
    return items


root = x.XDefaultRootWindow(dpy)
r, p, kids, nkids = Window(), Window(), ctypes.POINTER(Window)(), ctypes.c_uint()
x.XQueryTree(dpy, root, ctypes.byref(r), ctypes.byref(p), ctypes.byref(kids), ctypes.byref(nkids))
closed = 0
for i in range(nkids.value):
    w = kids[i]
    if prop(w, net_wm_pid, XA_CARDINAL) != [pid]:
        continue
    if wm_delete not in prop(w, wm_protocols, XA_ATOM):
        continue
    attr = XWindowAttributes()
    if not x.XGetWindowAttributes(dpy, w, ctypes.byref(attr)) or attr.map_state != IS_VIEWABLE:
        continue  # hidden windows (docks, dialogs) are not what a user can close
    name = ctypes.c_char_p()
    x.XFetchName(dpy, w, ctypes.byref(name))
    print("x11-close: closing window 0x%x %r of process %d" % (w, name.value or b"", pid))
    if name.value is not None:
        x.XFree(name)
    ev = XEvent()
    ev.xclient.type = CLIENT_MESSAGE
    ev.xclient.window = w
    ev.xclient.message_type = wm_protocols
    ev.xclient.format = 32
    ev.xclient.l[0] = wm_delete
    ev.xclient.l[1] = 0  # CurrentTime
    x.XSendEvent(dpy, w, 0, 0, ctypes.byref(ev))
    closed += 1
if kids:
    x.XFree(kids)
x.XFlush(dpy)
x.XCloseDisplay(dpy)
if not closed:
    sys.exit("x11-close: process %d has no visible top-level window that accepts WM_DELETE_WINDOW" % pid)
