/*
 * cli/cmd_account.c - `certpilot account register` and `certpilot account show`.
 */
#include "cli/cli.h"

#include <getopt.h>
#include <openssl/crypto.h>
#include <stdlib.h>
#include <string.h>

#include "common/file.h"

#define CONTACTS_MAX 8

static void usage(FILE *f)
{
    fputs("usage: certpilot account register [--email ADDR]... --agree-tos\n"
          "                                  [--eab-kid ID [--eab-hmac-key KEY |\n"
          "                                   --eab-hmac-key-file FILE]] [common options]\n"
          "       certpilot account show [common options]\n"
          "common options: --server URL|letsencrypt|letsencrypt-staging  --ca-bundle FILE\n"
          "                --state-dir DIR  -v/--verbose  --json\n"
          "The EAB MAC key can also come from the environment variable "
          "CERTPILOT_EAB_HMAC_KEY,\n"
          "or a file (first line), so that it does not show in the process list.\n",
          f);
}

#define EAB_KEY_FILE_MAX 4096

/* The first line of `path`, without the line end and trailing blanks, into
 * *out (heap; the caller cleanses and frees it). */
static int read_key_file(const char *path, char **out)
{
    struct cp_err err = {0};
    char *text = NULL;
    size_t len = 0;
    if (cp_file_read(path, EAB_KEY_FILE_MAX, &text, &len, &err) != CP_OK) {
        cli_error("--eab-hmac-key-file: %s", err.msg);
        return CLI_EXIT_CONFIG;
    }
    size_t n = strcspn(text, "\r\n");
    while (n > 0 && (text[n - 1] == ' ' || text[n - 1] == '\t'))
        n--;
    if (n == 0 || memchr(text, '\0', len) != NULL) {
        OPENSSL_cleanse(text, len);
        free(text);
        cli_error("--eab-hmac-key-file %s: the first line should hold the MAC key the CA gave "
                  "(base64url)",
                  path);
        return CLI_EXIT_CONFIG;
    }
    OPENSSL_cleanse(text + n, len - n);
    text[n] = '\0';
    *out = text;
    return 0;
}

static int print_account(const struct cli_common *c, const struct acme_key *key, const char *url,
                         const char *what)
{
    char thumb[44] = "";
    struct cp_err err = {0};
    (void)acme_key_thumbprint(key, thumb, &err);
    if (c->json) {
        json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "server", c->server, "url", url,
                              "key_type", acme_key_type_name(acme_key_type_of(key)), "thumbprint",
                              thumb, "state_dir", c->state_dir);
        cli_print_json(j);
        json_decref(j);
    } else {
        printf("%s account for %s\n  URL:        %s\n  key:        %s\n  thumbprint: %s\n"
               "  CAA record allowing only this account:\n"
               "    example.com. CAA 0 issue \"<CA identity>; accounturi=%s\"\n",
               what, c->server, url, acme_key_type_name(acme_key_type_of(key)), thumb, url);
    }
    return CLI_EXIT_OK;
}

static int account_main(int argc, char **argv, bool reg)
{
    static const struct option longopts[] = {
        {"email", required_argument, NULL, 'e'},
        {"agree-tos", no_argument, NULL, 't'},
        {"eab-kid", required_argument, NULL, 'k'},
        {"eab-hmac-key", required_argument, NULL, 'm'},
        {"eab-hmac-key-file", required_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},
        CLI_COMMON_LONGOPTS,
        {NULL, 0, NULL, 0},
    };
    struct cli_common common;
    struct acme_account_req req = {0};
    char *contacts[CONTACTS_MAX];
    size_t ncontacts = 0;
    int ch, status;
    const char *key_file = NULL;
    char *file_key = NULL;

    cli_common_init(&common);
    optind = 1;
    opterr = 0;
    while ((ch = getopt_long(argc, argv, ":hv", longopts, NULL)) != -1) {
        if (cli_common_option(&common, ch, optarg))
            continue;
        switch (ch) {
        case 'e':
            if (!reg || ncontacts == CONTACTS_MAX || strchr(optarg, '@') == NULL ||
                strchr(optarg, ',') != NULL) {
                cli_error("--email \"%s\": give one address per --email, at most %d", optarg,
                          CONTACTS_MAX);
                goto usage_error;
            }
            contacts[ncontacts] = malloc(strlen(optarg) + 8);
            if (contacts[ncontacts] == NULL)
                return CLI_EXIT_SOFTWARE;
            snprintf(contacts[ncontacts], strlen(optarg) + 8, "mailto:%s", optarg);
            ncontacts++;
            break;
        case 't': req.agree_tos = true; break;
        case 'k': req.eab_kid = optarg; break;
        case 'm': req.eab_hmac_key = optarg; break;
        case 'f': key_file = optarg; break;
        case 'h':
            usage(stdout);
            status = CLI_EXIT_OK;
            goto out;
        default:
            cli_error("unknown option or missing value: \"%s\"", argv[optind - 1]);
            goto usage_error;
        }
    }
    if (optind < argc) {
        cli_error("unexpected argument \"%s\"", argv[optind]);
        goto usage_error;
    }
    if (key_file != NULL && req.eab_hmac_key != NULL) {
        cli_error("give the EAB MAC key once: --eab-hmac-key or --eab-hmac-key-file");
        goto usage_error;
    }
    if (key_file != NULL) {
        status = read_key_file(key_file, &file_key);
        if (status != 0)
            goto out;
        req.eab_hmac_key = file_key;
    }
    /* The environment is the last resort, and only with a key id. */
    const char *env_key = getenv("CERTPILOT_EAB_HMAC_KEY");
    if (req.eab_hmac_key == NULL && req.eab_kid != NULL && env_key != NULL && *env_key != '\0')
        req.eab_hmac_key = env_key;
    if ((req.eab_kid == NULL) != (req.eab_hmac_key == NULL)) {
        cli_error("--eab-kid and the EAB MAC key go together (--eab-hmac-key, "
                  "--eab-hmac-key-file or CERTPILOT_EAB_HMAC_KEY)");
        goto usage_error;
    }
    if (reg && !req.agree_tos) {
        cli_error("registering needs --agree-tos: read the CA's terms of service first");
        goto usage_error;
    }
    status = cli_common_finish(&common);
    if (status != 0)
        goto out;

    struct acme_client *client = NULL;
    struct acme_key *key = NULL;
    char *url = NULL;
    status = cli_client_open(&common, &client);
    if (status == 0) {
        req.contacts = (const char *const *)contacts;
        req.ncontacts = ncontacts;
        struct acme_account_req lookup = {.only_existing = true};
        status = cli_account_ensure(&common, client, reg ? &req : &lookup, 0, &key, &url);
    }
    if (status == 0)
        status = print_account(&common, key, url, reg ? "Registered" : "Existing");
    acme_key_free(key);
    free(url);
    acme_client_free(client);
    goto out;
usage_error:
    status = CLI_EXIT_USAGE;
out:
    cli_common_clear(&common);
    for (size_t i = 0; i < ncontacts; i++)
        free(contacts[i]);
    if (file_key != NULL) {
        OPENSSL_cleanse(file_key, strlen(file_key));
        free(file_key);
    }
    return status;
}

int cmd_account(int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage(argc < 2 ? stderr : stdout);
        return argc < 2 ? CLI_EXIT_USAGE : CLI_EXIT_OK;
    }
    if (strcmp(argv[1], "register") == 0)
        return account_main(argc - 1, argv + 1, true);
    if (strcmp(argv[1], "show") == 0)
        return account_main(argc - 1, argv + 1, false);
    cli_error("unknown account command \"%s\" (register, show)", argv[1]);
    return CLI_EXIT_USAGE;
}
