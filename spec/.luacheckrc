-- luacheck settings for the busted specs (run from spec/: luacheck .).
std = "lua54+busted"
max_line_length = 100
