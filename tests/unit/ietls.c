/* ietls.c — a test library with initial-exec TLS, loaded by dlopen after
 * Gs exist: glibc initialises such a module's static TLS only in its own
 * threads, vthread must do it for every G. */
__thread int ie_data __attribute__((tls_model("initial-exec"))) = 0x5eed;
__thread char ie_bss[32] __attribute__((tls_model("initial-exec")));

int ie_check(void)
{
    int ok = ie_data == 0x5eed;
    for (int i = 0; i < 32; i++)
        ok &= ie_bss[i] == 0;
    ie_data = -1; /* dirty it: the next G must not see this */
    ie_bss[3] = 1;
    return ok;
}
