# Copy .env.example with every empty *_PASSWORD filled with its own random value (48 hex digits: safe in
# URLs and config files):
#
#   awk -f deploy/env/fill-passwords.awk .env.example > .env && chmod 600 .env
#
# Needs openssl. Run it once: a second run would change passwords the volumes already hold.
/^[A-Z][A-Z0-9_]*_PASSWORD=$/ {
    command = "openssl rand -hex 24"
    command | getline password
    close(command)
    print $0 password
    next
}
{ print }
