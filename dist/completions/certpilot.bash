# bash completion for certpilot(1).
#
# The options are not listed here: each command prints its own with
# `certpilot COMMAND --list-options`, so this file never lags behind the
# binary.  What is here: the command words, and the values some options take.

_certpilot_values()
{
    # The values of option $1 (one a line), or nothing to complete files.
    case $1 in
    --key-type) printf '%s\n' ecdsa rsa ec256 ec384 rsa2048 rsa3072 rsa4096 ;;
    --elliptic-curve) printf '%s\n' secp256r1 secp384r1 ;;
    --rsa-key-size) printf '%s\n' 2048 3072 4096 ;;
    --challenge | --method) printf '%s\n' http-01 dns-01 tls-alpn-01 dns-persist-01 ;;
    --server) printf '%s\n' letsencrypt letsencrypt-staging https:// ;;
    --caa-preflight) printf '%s\n' enforce warn off ;;
    --reason) printf '%s\n' unspecified keyCompromise affiliationChanged superseded \
        cessationOfOperation ;;
    --dry-run) printf '%s\n' check order ;;
    --preferred-profile | --required-profile) printf '%s\n' classic tlsserver shortlived ;;
    esac
}

_certpilot()
{
    local cur=${COMP_WORDS[COMP_CWORD]} prev=${COMP_WORDS[COMP_CWORD - 1]}
    local prog=${COMP_WORDS[0]} cmd="" sub="" subs="" i w
    COMPREPLY=()
    for ((i = 1; i < COMP_CWORD; i++)); do
        w=${COMP_WORDS[i]}
        [[ $w == -* ]] && continue
        if [[ -z $cmd ]]; then
            cmd=$w
        elif [[ -z $sub ]]; then
            sub=$w
            break
        fi
    done
    case $cmd in
    caa) subs="check" ;;
    account) subs="register show update rollover deactivate" ;;
    import) subs="certbot dehydrated" ;;
    systemd) subs="install cron" ;;
    esac
    if [[ -z $cmd ]]; then
        COMPREPLY=($(compgen -W "caa doctor persist-record account issue renew list revoke delete import
            systemd serve-challenges help version --help --version" -- "$cur"))
        return
    fi
    if [[ -n $subs && -z $sub ]]; then
        COMPREPLY=($(compgen -W "$subs --help" -- "$cur"))
        return
    fi

    local opts
    opts=$("$prog" $cmd $sub --list-options 2>/dev/null)
    # --opt=VALUE in one word: complete the value.
    if [[ $cur == --*=* ]]; then
        prev=${cur%%=*}
        cur=${cur#*=}
    elif [[ $cur == -* ]]; then
        COMPREPLY=($(compgen -W "$(printf '%s\n' $opts | sed 's/\[=\]$//; s/=$//')" -- "$cur"))
        return
    elif ! printf '%s\n' $opts | grep -qx -e "$prev=" &&
        [[ $prev != -w && $prev != -d && $prev != -n ]]; then
        prev="" # an operand, not an option's value
    fi
    [[ $prev == -w ]] && prev=--webroot
    [[ $prev == -n ]] && prev=--cert-name
    case $prev in
    "" | -d | --domain | --domains | --email | --eab-kid | --eab-hmac-key | --resolver | \
        --timeout | --tries | --*-port | --*-address | --*-timeout | --keep-versions | \
        --preferred-chain | --ca-identity | --account-uri | --store | --store-user | \
        --store-lock-ttl)
        return ;;
    --cert-name)
        COMPREPLY=($(compgen -W "$("$prog" list --json 2>/dev/null |
            sed -n 's/.*"cert_name": *"\([^"]*\)".*/\1/p')" -- "$cur"))
        return ;;
    --webroot | --webroot-path | --state-dir | --config-dir | --basedir | --unit-dir)
        COMPREPLY=($(compgen -d -- "$cur"))
        return ;;
    esac
    local values
    values=$(_certpilot_values "$prev")
    if [[ -n $values ]]; then
        COMPREPLY=($(compgen -W "$values" -- "$cur"))
    else
        COMPREPLY=($(compgen -f -- "$cur"))
    fi
}
complete -F _certpilot certpilot
