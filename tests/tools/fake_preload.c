/*
 * fake_preload.c — a stand-in for libvthread.so in the tests of tools/:
 * a shared library that can be preloaded and does nothing at all.  The
 * tests compile it into a temporary directory:
 *
 *     cc -shared -fPIC -o "$tmp/libfake.so" tests/tools/fake_preload.c
 *
 * The one symbol only keeps the translation unit from being empty.
 */
int vthread_fake_preload_marker;
