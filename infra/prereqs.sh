# Sourced by the README's commands: makes sure the tools the project needs are on this machine.
# PostgreSQL and Azurite are installed by infra/local/up.sh; here: the .NET SDK and Node.js.
ensure_prereqs() {
    local as_root=""
    [ "$(id -u)" = 0 ] || as_root="sudo"
    if ! command -v dotnet >/dev/null 2>&1; then
        echo "error: the .NET 10 SDK is not installed (https://dot.net); install it and run this again" >&2
        exit 1
    fi
    if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
        $as_root apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $as_root apt-get install -y -qq nodejs npm >/dev/null
    fi
    export DOTNET_CLI_TELEMETRY_OPTOUT=1 DOTNET_NOLOGO=1 DOTNET_SKIP_FIRST_TIME_EXPERIENCE=1
}
