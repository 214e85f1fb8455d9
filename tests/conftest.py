import os

# Tests render offscreen on the CPU unless the caller chose a platform.
os.environ.setdefault("PYOPENGL_PLATFORM", "osmesa")
