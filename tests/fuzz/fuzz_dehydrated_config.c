/*
 * tests/fuzz/fuzz_dehydrated_config.c - libFuzzer target for the readers of
 * dehydrated's files in flow/import_dehydrated.c: the same bytes as a config
 * (the bash fragment evaluated without running anything) and as domains.txt.
 * Nothing is written: the readers only fill a report.
 *
 * Needs: flow/import_dehydrated.c, the rest from certpilot_core (static, so
 * the instrumented copy of that file is the one linked).
 * Seeds: corpus/dehydrated_config/.
 */
#include "flow/flow.h"

#include <stdint.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct flow_dh_vars vars = {0};
    struct flow_import_report rep = {0};
    struct flow_dh_domains doms = {0};
    struct cp_err err = {0};
    if (flow_dh_defaults(&vars, "/basedir") == CP_OK)
        (void)flow_dh_config_parse("config", (const char *)data, size, &vars, &rep, &err);
    (void)flow_dh_domains_parse("domains.txt", (const char *)data, size, &doms, &rep, &err);
    flow_dh_domains_clear(&doms);
    flow_dh_vars_clear(&vars);
    flow_import_report_clear(&rep);
    return 0;
}
