"""The stand-in's argument parser. Like ComfyUI's, it rejects unknown flags with exit code 2,
and it declares the Manager flags (the supervisor checks this file for them)."""

import argparse

parser = argparse.ArgumentParser(prog="main.py")
parser.add_argument("--listen", default="127.0.0.1")
parser.add_argument("--port", type=int, default=8188)
parser.add_argument("--base-directory", required=True)
parser.add_argument("--database-url")
parser.add_argument("--preview-method", default="none")
parser.add_argument("--cpu", action="store_true")
parser.add_argument("--enable-manager", action="store_true")
parser.add_argument("--disable-manager-ui", action="store_true")
parser.add_argument("--extra-model-paths-config", nargs="+", action="append", default=[])
