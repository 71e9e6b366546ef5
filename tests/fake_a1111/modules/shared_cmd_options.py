"""Command line of the fake WebUI: extensions' preload() first, then parse the arguments the test chose."""

import json
import os

from modules import cmd_args, script_loading

parser = cmd_args.parser
script_loading.preload_extensions(parser)
cmd_opts = parser.parse_args(json.loads(os.environ.get("FAKE_WEBUI_ARGS", "[]")))
