/* tests/unit/test_flow_import_dehydrated.c - flow/import_dehydrated.c's
 * readers of dehydrated's files, on odd and hostile input: the config (a
 * bash fragment) yields the plain assignments only, with quotes, escapes
 * and ${NAME} of known values, and every piece of shell code is reported,
 * never evaluated; domains.txt as dehydrated reads it (case, CRLF, "a>b",
 * "> b", comments) with the lines it would refuse reported; and the whole
 * import from a BASEDIR on disk: directory overrides, per-certificate
 * configs, what each setting becomes in renewal.conf, accounts (a v1
 * directory linked from the v2 name, a deactivated one, a stray one), a
 * second run that changes nothing and a dry run that writes nothing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "flow/flow.h"
#include "tests/unit/fixture.h"

static struct flow_dh_vars vars;
static struct flow_import_report rep;

static int setup(void **state)
{
    (void)state;
    memset(&vars, 0, sizeof vars);
    memset(&rep, 0, sizeof rep);
    assert_int_equal(flow_dh_defaults(&vars, "/srv/dh"), CP_OK);
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    flow_dh_vars_clear(&vars);
    flow_import_report_clear(&rep);
    return 0;
}

static enum cp_code parse(const char *text)
{
    struct cp_err err = {0};
    return flow_dh_config_parse("config", text, strlen(text), &vars, &rep, &err);
}

static const char *get(const char *name)
{
    return flow_dh_get(&vars, name);
}

/* The report item naming `name`, or NULL. */
static const struct flow_import_item *item(const char *name)
{
    for (size_t i = 0; i < rep.n; i++)
        if (rep.items[i].name != NULL && strcmp(rep.items[i].name, name) == 0)
            return &rep.items[i];
    return NULL;
}

static void plain_assignments(void **state)
{
    (void)state;
    assert_int_equal(parse("# a comment\n"
                           "CA=\"letsencrypt-test\"\n"
                           "   export CONTACT_EMAIL=ops@example.test   # trailing comment\n"
                           "HOOK='/etc/dehydrated/hook with space.sh'\n"
                           "KEY_ALGO=rsa KEYSIZE=3072; RENEW_DAYS=20\n"
                           "WELLKNOWN=\"${BASEDIR}/www\"/$CHALLENGETYPE\n"
                           "PREFERRED_CHAIN=\"ISRG \\\"Root\\\" \\$X1\"\n"
                           "OPENSSL_CNF=a\\ b'c'\"d\"\n"
                           "EMPTY=\n"
                           "MULTI=\"line1\nline2\"\n"
                           "LONG=a\\\nb\n"
                           "\r\n"),
                     CP_OK);
    assert_string_equal(get("CA"), "letsencrypt-test");
    assert_string_equal(get("CONTACT_EMAIL"), "ops@example.test");
    assert_string_equal(get("HOOK"), "/etc/dehydrated/hook with space.sh");
    assert_string_equal(get("KEY_ALGO"), "rsa");
    assert_string_equal(get("KEYSIZE"), "3072");
    assert_string_equal(get("RENEW_DAYS"), "20");
    assert_string_equal(get("WELLKNOWN"), "/srv/dh/www/http-01");
    assert_string_equal(get("PREFERRED_CHAIN"), "ISRG \"Root\" $X1");
    assert_string_equal(get("OPENSSL_CNF"), "a bcd");
    assert_string_equal(get("EMPTY"), "");
    assert_string_equal(get("MULTI"), "line1\nline2");
    assert_string_equal(get("LONG"), "ab");
    assert_int_equal(rep.n, 0); /* nothing to report */
}

static void debian_default_config(void **state)
{
    (void)state;
    /* Debian's /etc/dehydrated/config, as shipped. */
    assert_int_equal(parse("CONFIG_D=/etc/dehydrated/conf.d\n"
                           "BASEDIR=/var/lib/dehydrated\n"
                           "WELLKNOWN=\"${BASEDIR}/acme-challenges\"\n"
                           "DOMAINS_TXT=\"/etc/dehydrated/domains.txt\"\n"),
                     CP_OK);
    assert_string_equal(get("WELLKNOWN"), "/var/lib/dehydrated/acme-challenges");
    assert_string_equal(get("CONFIG_D"), "/etc/dehydrated/conf.d");
    assert_int_equal(rep.n, 0);
}

static void shell_code_is_reported_not_run(void **state)
{
    (void)state;
    assert_int_equal(parse("CA=zerossl\n"
                           "if [ -e /x ]; then\n"
                           "  CA=buypass\n"
                           "fi\n"
                           "OPENSSL_CNF=\"$(openssl version -d)\"\n"
                           "LOCKFILE=`mktemp`\n"
                           "CHAINCACHE=${BASEDIR:-/tmp}\n"
                           "CURL_OPTS=\"$HOME/x\"\n"
                           "IP_VERSION=~/v\n"
                           "[ -n \"$X\" ] && KEYSIZE=2048\n"
                           ". /etc/dehydrated/extra.sh\n"
                           "hook() { HOOK=/bad; }\n"
                           "PRIVATE_KEY_RENEW=no\n"
                           "ARR=(a b)\n"
                           "echo $1 > /tmp/pwned\n"),
                     CP_OK);
    /* the assignments made by code that is not run keep their values */
    assert_string_equal(get("CA"), "zerossl");
    assert_string_equal(get("OPENSSL_CNF"), "");
    assert_string_equal(get("LOCKFILE"), "");
    assert_string_equal(get("CHAINCACHE"), "");
    assert_string_equal(get("CURL_OPTS"), "");
    assert_string_equal(get("IP_VERSION"), "");
    assert_string_equal(get("KEYSIZE"), "4096");
    assert_string_equal(get("HOOK"), "");
    assert_null(get("ARR"));
    /* after the function, plain assignments are read again */
    assert_string_equal(get("PRIVATE_KEY_RENEW"), "no");
    const char *reported[] = {"if",         "CA",        "OPENSSL_CNF", "LOCKFILE",
                              "CHAINCACHE", "CURL_OPTS", "IP_VERSION",  "[",
                              ".",          "hook",      "echo"};
    for (size_t i = 0; i < sizeof reported / sizeof reported[0]; i++) {
        const struct flow_import_item *it = item(reported[i]);
        assert_non_null(it);
        assert_int_equal(it->action, FLOW_IMPORT_SKIPPED);
        assert_string_equal(it->kind, "setting");
        assert_non_null(it->why);
        assert_non_null(strstr(it->source, "config:"));
    }
    assert_non_null(strstr(item("CA")->source, "config:3"));
    assert_non_null(strstr(item("CURL_OPTS")->why, "$HOME"));
    assert_non_null(strstr(item(".")->why, "another file"));
}

static void hostile_input_is_refused(void **state)
{
    (void)state;
    struct cp_err err = {0};
    /* an unclosed quote: bash refuses the file, and so does this */
    assert_int_equal(parse("CA=\"https://x\nHOOK=/y\n"), CP_EINVAL);
    /* a NUL byte */
    static const char nul[] = "CA=a\0HOOK=/evil\n";
    assert_int_equal(flow_dh_config_parse("config", nul, sizeof nul - 1, &vars, &rep, &err),
                     CP_EINVAL);
    /* a value longer than is read: reported, not truncated */
    size_t n = 10000;
    char *big = malloc(n + 16);
    assert_non_null(big);
    memcpy(big, "HOOK=", 5);
    memset(big + 5, 'a', n);
    strcpy(big + 5 + n, "\n");
    flow_import_report_clear(&rep);
    assert_int_equal(parse(big), CP_OK);
    assert_string_equal(get("HOOK"), "");
    assert_non_null(item("HOOK"));
    free(big);
    /* many words, odd bytes, unbalanced closers */
    assert_int_equal(parse("A=1 B=2 C=3 D=4 E=5 F=6 G=7 H=8 I=9 J=10 K=11 L=12 M=13 N=14 O=15 "
                           "P=16 Q=17 R=18 S=19 T=20 U=21 V=22 W=23 X=24 Y=25 Z=26 AA=1 AB=1 "
                           "AC=1 AD=1 AE=1 AF=1 AG=1 AH=1 AI=1 AJ=1 AK=1 AL=1 AM=1 AN=1 AO=1 "
                           "AP=1 AQ=1 AR=1 AS=1 AT=1 AU=1 AV=1 AW=1 AX=1 AY=1 AZ=1 BA=1 BB=1 "
                           "BC=1 BD=1 BE=1 BF=1 BG=1 BH=1 BI=1 BJ=1 BK=1 BL=1 BM=1\n"
                           "fi\nfi\ndone\n}\n"
                           "\xff\xfe=1\n"
                           "9X=1\n"
                           "$\n"),
                     CP_OK);
    assert_null(get("BM"));
    assert_null(get("9X"));
}

static void domains(void **state)
{
    (void)state;
    struct flow_dh_domains d;
    struct cp_err err = {0};
    const char *text = "# comment\n"
                       "\n"
                       "  Example.COM www.example.com  \r\n"
                       "a.example b.example > mycert\n"
                       "c.example>other\n"
                       "d.example >  spaced\n"
                       "*.w.example > wild\n"
                       "*.nowild.example\n"
                       "e.example > x > y\n"
                       "> onlyalias\n"
                       "f.example >\n"
                       "g.example > mycert\n"
                       "\t h.example\th2.example";
    assert_int_equal(flow_dh_domains_parse("domains.txt", text, strlen(text), &d, &rep, &err),
                     CP_OK);
    assert_int_equal(d.n, 6);
    assert_string_equal(d.c[0].alias, "example.com");
    assert_int_equal(d.c[0].nnames, 2);
    assert_string_equal(d.c[0].names[0], "example.com");
    assert_string_equal(d.c[0].names[1], "www.example.com");
    assert_int_equal(d.c[0].line, 3);
    assert_string_equal(d.c[1].alias, "mycert");
    assert_int_equal(d.c[1].nnames, 2);
    assert_string_equal(d.c[2].alias, "other");
    assert_int_equal(d.c[2].nnames, 1);
    assert_string_equal(d.c[2].names[0], "c.example");
    assert_string_equal(d.c[3].alias, "spaced");
    assert_string_equal(d.c[4].alias, "wild");
    assert_string_equal(d.c[4].names[0], "*.w.example");
    assert_string_equal(d.c[5].alias, "h.example");
    assert_int_equal(d.c[5].nnames, 2);
    /* refused lines: a wildcard without alias, two aliases, no names, a bare
     * '>', an alias used twice */
    assert_int_equal(rep.n, 5);
    for (size_t i = 0; i < rep.n; i++) {
        assert_int_equal(rep.items[i].action, FLOW_IMPORT_SKIPPED);
        assert_string_equal(rep.items[i].kind, "certificate");
    }
    assert_non_null(strstr(item("*.nowild.example")->why, "alias"));
    assert_non_null(strstr(item("mycert")->why, "line 4"));
    assert_non_null(strstr(item("mycert")->source, "domains.txt:12"));
    flow_dh_domains_clear(&d);

    static const char nul[] = "a.example\0b.example\n";
    assert_int_equal(flow_dh_domains_parse("domains.txt", nul, sizeof nul - 1, &d, &rep, &err),
                     CP_EINVAL);
    flow_dh_domains_clear(&d);
}

/* ------------------------------------------------- a BASEDIR on disk */

static char tmp[256], basedir[300], state_dir[300];

static void put(const char *rel, const char *text)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", basedir, rel);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    assert_int_equal(fclose(f), 0);
}

static void dir(const char *rel)
{
    char path[600];
    snprintf(path, sizeof path, "%s/%s", basedir, rel);
    assert_int_equal(mkdir(path, 0755), 0);
}

/* dehydrated's name for a CA's account directory: base64url of "URL\n". */
static void account_dir_name(const char *url, char *out, size_t size)
{
    char line[300];
    unsigned char b64[500];
    int n = snprintf(line, sizeof line, "%s\n", url);
    int len = EVP_EncodeBlock(b64, (const unsigned char *)line, n);
    size_t k = 0;
    for (int i = 0; i < len && b64[i] != '=' && k + 1 < size; i++)
        out[k++] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : (char)b64[i];
    out[k] = '\0';
}

static void cert_files(const char *certdir)
{
    char *key = NULL, rel[300];
    char *cert = fixture_cert(1, 0, 90LL * 86400, &key);
    snprintf(rel, sizeof rel, "%s/privkey.pem", certdir);
    put(rel, key);
    snprintf(rel, sizeof rel, "%s/cert.pem", certdir);
    put(rel, cert);
    free(key);
    free(cert);
}

static int disk_setup(void **state)
{
    setup(state);
    snprintf(tmp, sizeof tmp, "/tmp/cp-import-dh-XXXXXX");
    assert_non_null(mkdtemp(tmp));
    snprintf(basedir, sizeof basedir, "%s/dh", tmp);
    snprintf(state_dir, sizeof state_dir, "%s/state", tmp);
    assert_int_equal(mkdir(basedir, 0755), 0);
    put("config", "CA=letsencrypt\n"
                  "CERTDIR=\"${BASEDIR}/mycerts\"\n"
                  "DOMAINS_TXT=\"${BASEDIR}/lists/domains.txt\"\n"
                  "DOMAINS_D=\"${BASEDIR}/per-cert\"\n"
                  "CHALLENGETYPE=dns-01\n"
                  "HOOK=/usr/local/bin/hook.sh\n"
                  "PRIVATE_KEY_RENEW=no\n"
                  "KEY_ALGO=rsa\n"
                  "KEYSIZE=3072\n"
                  "CONTACT_EMAIL=ops@example.test\n");
    dir("lists");
    put("lists/domains.txt", "a.example > one\nb.example www.b.example > two\n"
                             "c.example > three\nd.example\n");
    dir("per-cert");
    put("per-cert/two", "CHALLENGETYPE=http-01\n"
                        "WELLKNOWN=/srv/www/.well-known/acme-challenge/\n"
                        "KEY_ALGO=prime256v1\n"
                        "OCSP_MUST_STAPLE=yes\n"
                        "CA=zerossl\n");
    put("per-cert/three", "CHALLENGETYPE=tls-alpn-01\n");
    dir("mycerts");
    dir("mycerts/one");
    dir("mycerts/two");
    dir("mycerts/three");
    dir("mycerts/d.example"); /* never issued: no cert.pem */
    cert_files("mycerts/one");
    cert_files("mycerts/two");
    cert_files("mycerts/three");
    /* accounts: Let's Encrypt's v1 directory, with the v2 name linked to it
     * (dehydrated's own migration), a deactivated one, a stray one */
    char v1[200], v2[200], zs[200], rel[600], *key = NULL;
    account_dir_name("https://acme-v01.api.letsencrypt.org/directory", v1, sizeof v1);
    account_dir_name("https://acme-v02.api.letsencrypt.org/directory", v2, sizeof v2);
    account_dir_name("https://acme.zerossl.com/v2/DV90", zs, sizeof zs);
    dir("accounts");
    snprintf(rel, sizeof rel, "accounts/%s", v1);
    dir(rel);
    free(fixture_cert(2, 0, 86400, &key));
    snprintf(rel, sizeof rel, "accounts/%s/account_key.pem", v1);
    put(rel, key);
    free(key);
    snprintf(rel, sizeof rel, "accounts/%s/account_id.json", v1);
    put(rel, "{\"url\":\"https://acme-v02.api.letsencrypt.org/acme/acct/42\"}");
    snprintf(rel, sizeof rel, "accounts/%s/registration_info.json", v1);
    put(rel, "{\"status\":\"valid\"}");
    snprintf(rel, sizeof rel, "%s/accounts/%s", basedir, v2);
    assert_int_equal(symlink(v1, rel), 0);
    snprintf(rel, sizeof rel, "accounts/%s", zs);
    dir(rel);
    snprintf(rel, sizeof rel, "accounts/%s/deactivated", zs);
    put(rel, "");
    dir("accounts/not-a-ca");
    return 0;
}

static int disk_teardown(void **state)
{
    teardown(state);
    return fixture_remove_tree(tmp) == 0 ? 0 : -1;
}

static enum cp_code run_import(bool dry)
{
    struct cp_store *st = NULL;
    struct cp_err err = {0};
    struct flow_dh_import_req req = {.basedir = basedir};
    flow_import_report_clear(&rep);
    rep.dry = dry;
    assert_int_equal(store_fs_open(state_dir, &st, &err), CP_OK);
    enum cp_code rc = flow_import_dehydrated(st, &req, &rep, &err);
    store_close(st);
    return rc;
}

static char *renewal_conf(const char *name)
{
    char path[600], *text = NULL;
    snprintf(path, sizeof path, "%s/certs/%s/renewal.conf", state_dir, name);
    FILE *f = fopen(path, "r");
    assert_non_null(f);
    text = calloc(1, 8192);
    assert_non_null(text);
    assert_true(fread(text, 1, 8191, f) > 0);
    fclose(f);
    return text;
}

static void whole_import(void **state)
{
    (void)state;
    /* a dry run first: nothing written */
    assert_int_equal(run_import(true), CP_OK);
    assert_int_equal(access(state_dir, F_OK), -1);
    size_t dry_n = rep.n;

    assert_int_equal(run_import(false), CP_OK);
    assert_int_equal(rep.n, dry_n);
    const struct flow_import_item *acct = item("https://acme-v02.api.letsencrypt.org/acme/acct/42");
    assert_non_null(acct);
    assert_int_equal(acct->action, FLOW_IMPORT_NEW);
    assert_int_equal(item("https://acme.zerossl.com/v2/DV90")->action, FLOW_IMPORT_SKIPPED);
    assert_int_equal(item("not-a-ca")->action, FLOW_IMPORT_SKIPPED);
    assert_null(item("https://acme-v01.api.letsencrypt.org/directory")); /* linked: silent */
    assert_int_equal(item("one")->action, FLOW_IMPORT_NEW);
    assert_int_equal(item("two")->action, FLOW_IMPORT_NEW);
    assert_int_equal(item("three")->action, FLOW_IMPORT_NEW);
    assert_int_equal(item("d.example")->action, FLOW_IMPORT_SKIPPED);
    assert_int_equal(item("three: CHALLENGETYPE=tls-alpn-01")->action, FLOW_IMPORT_SKIPPED);
    assert_int_equal(item("two: OCSP_MUST_STAPLE=yes")->action, FLOW_IMPORT_SKIPPED);
    assert_null(item("two: CA=zerossl")); /* not a per-certificate setting: ignored */

    char *one = renewal_conf("one");
    assert_non_null(strstr(one, "\nserver = https://acme-v02.api.letsencrypt.org/directory\n"
                                "domain = a.example\n"
                                "key-type = rsa3072\n"
                                "challenge = dns-01\n"
                                "hook = /usr/local/bin/hook.sh\n"
                                "reuse-key = yes\n"));
    free(one);
    char *two = renewal_conf("two");
    assert_non_null(strstr(two, "\nserver = https://acme-v02.api.letsencrypt.org/directory\n"
                                "domain = b.example\n"
                                "domain = www.b.example\n"
                                "key-type = ec256\n"
                                "challenge = http-01\n"
                                "webroot = /srv/www\n"
                                "hook = /usr/local/bin/hook.sh\n"
                                "reuse-key = yes\n"));
    free(two);
    char *three = renewal_conf("three");
    assert_null(strstr(three, "challenge"));
    free(three);

    /* the account: key, URL and the config's contact */
    struct cp_store *st = NULL;
    struct cp_err err = {0};
    struct store_account a = {0};
    assert_int_equal(store_fs_open(state_dir, &st, &err), CP_OK);
    assert_int_equal(
        store_account_load(st, "https://acme-v02.api.letsencrypt.org/directory", &a, &err), CP_OK);
    assert_non_null(a.key);
    assert_string_equal(json_string_value(json_object_get(a.rec, "url")),
                        "https://acme-v02.api.letsencrypt.org/acme/acct/42");
    assert_string_equal(json_string_value(json_array_get(json_object_get(a.rec, "contact"), 0)),
                        "mailto:ops@example.test");
    store_account_clear(&a);
    store_close(st);

    /* again: nothing new */
    assert_int_equal(run_import(false), CP_OK);
    for (size_t i = 0; i < rep.n; i++)
        assert_int_not_equal(rep.items[i].action, FLOW_IMPORT_NEW);
    assert_int_equal(item("one")->action, FLOW_IMPORT_SAME);
    assert_int_equal(item("https://acme-v02.api.letsencrypt.org/acme/acct/42")->action,
                     FLOW_IMPORT_SAME);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(plain_assignments, setup, teardown),
        cmocka_unit_test_setup_teardown(debian_default_config, setup, teardown),
        cmocka_unit_test_setup_teardown(shell_code_is_reported_not_run, setup, teardown),
        cmocka_unit_test_setup_teardown(hostile_input_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(domains, setup, teardown),
        cmocka_unit_test_setup_teardown(whole_import, disk_setup, disk_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
