"""The site's picture helper, loaded by a hidden block at the top of each tutorial page.

``img_tag(obj)`` returns an ``<img>`` tag holding ``obj`` as a data URI (the page's ``show``
prints it with markdown-exec's captured ``print``), so the picture is drawn
when the site is built and lands inline in the page (markdown-exec, ``html="true"`` blocks).
``obj`` is a matplotlib Figure (drawn as PNG) or an :class:`anyconv.viz.Animation` (GIF).
In your own scripts use ``fig.savefig("name.png")`` or ``animation.save("name.gif")``.
"""

from __future__ import annotations

import base64
import io
import os
import tempfile
from typing import Any


def img_tag(obj: Any, alt: str = "", width: int | None = None) -> str:
    if hasattr(obj, "savefig"):  # a matplotlib Figure
        buf = io.BytesIO()
        obj.savefig(buf, format="png", dpi=72, bbox_inches="tight")
        data, mime = buf.getvalue(), "image/png"
        import matplotlib.pyplot as plt

        plt.close(obj)
    else:  # an anyconv.viz.Animation
        fd, path = tempfile.mkstemp(suffix=".gif")
        os.close(fd)
        try:
            obj.save(path)
            with open(path, "rb") as f:
                data, mime = f.read(), "image/gif"
        finally:
            os.remove(path)
    size = f' width="{width}"' if width else ""
    encoded = base64.b64encode(data).decode()
    return f'<img alt="{alt}"{size} src="data:{mime};base64,{encoded}">'
