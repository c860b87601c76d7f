# Sourced by the README's commands: makes sure the tools the project needs are on this machine.
# PostgreSQL and Azurite are installed by infra/local/up.sh; here: the .NET SDK, Node.js and, with
# --with-chromium (the test command), Debian's chromium for the dashboard's browser test.
ensure_prereqs() {
    local as_root="" packages=()
    [ "$(id -u)" = 0 ] || as_root="sudo"
    if ! command -v dotnet >/dev/null 2>&1; then
        echo "error: the .NET 10 SDK is not installed (https://dot.net); install it and run this again" >&2
        exit 1
    fi
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        packages+=(nodejs npm)
    fi
    if [ "${1:-}" = "--with-chromium" ] && [ ! -x /usr/bin/chromium ]; then
        packages+=(chromium)
    fi
    if [ "${#packages[@]}" -gt 0 ]; then
        $as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq "${packages[@]}" >/dev/null
    fi
    # The browser test drives that chromium through Playwright; Playwright must never download browsers of its own.
    export PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1
    export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
}
