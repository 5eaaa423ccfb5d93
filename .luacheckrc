-- luacheck configuration for the Prosody plugin (plugins/prosody), run by
-- `make lint`. Prosody 0.12 runs on Lua 5.4; a module's environment adds
-- the globals below (read-only: the plugin sets none).
std = "lua54"
include_files = { "plugins/prosody/*.lua" }
read_globals = { "module", "prosody", "hosts" }
max_line_length = 160
