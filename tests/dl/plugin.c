/* A module with initial-exec TLS: it takes a slot in every thread's
 * static TLS when dlopen'ed, and must show its initial values there. */
__attribute__((tls_model("initial-exec"))) __thread int ie_value = 42;
__attribute__((tls_model("initial-exec"))) __thread char ie_name[8] = "plugin";

int plugin_check(void)
{
    int ok = ie_value == 42 && ie_name[0] == 'p' && ie_name[5] == 'n';
    ie_value++; /* each thread's own copy */
    return ok;
}
