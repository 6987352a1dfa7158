"""Writes the JPEGs tests/test_data_formats.cpp decodes to check decode_cost (stb_image_write's own
JPEG writer shifts a negative int, which the UBSan build refuses, so the test cannot write them):
a 300 x 200 baseline and a progressive one, with 4:2:0 chroma, from a deterministic pattern.
Run: /usr/bin/python3 tests/golden/make_jpegs.py (python3-pil)."""
import os
from PIL import Image

here = os.path.dirname(os.path.abspath(__file__))
w, h = 300, 200
img = Image.new("RGB", (w, h))
img.putdata([((x * 7 + y) % 256, (x ^ y) % 256, (x * y) % 256) for y in range(h) for x in range(w)])
img.save(os.path.join(here, "picture_300x200.jpg"), quality=90)
img.save(os.path.join(here, "picture_300x200_progressive.jpg"), quality=90, progressive=True)
