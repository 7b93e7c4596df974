"""The graph of allowed flows: namespaces as columns of pods, one arrow per allowed ordered pair.

SVG is written directly; PNG is that SVG rasterized by CairoSVG (which needs the system's
libcairo).
"""
from __future__ import annotations

from xml.sax.saxutils import escape

from .matrix import Matrix

_COL_W, _COL_GAP, _POD_H, _POD_GAP, _TOP, _PAD = 200, 90, 28, 12, 70, 16


class RenderError(RuntimeError):
    pass


def svg(m: Matrix) -> str:
    namespaces: list[str] = []
    pos: list[tuple[float, float]] = []
    rows: dict[str, int] = {}
    for key in m.pods:
        ns = key.split("/", 1)[0]
        if ns not in rows:
            namespaces.append(ns)
            rows[ns] = 0
        col = namespaces.index(ns)
        x = _PAD + col * (_COL_W + _COL_GAP) + _PAD
        y = _TOP + 30 + rows[ns] * (_POD_H + _POD_GAP)
        pos.append((x, y))
        rows[ns] += 1
    width = _PAD * 2 + max(1, len(namespaces)) * (_COL_W + _COL_GAP)
    height = _TOP + 30 + max([0, *rows.values()]) * (_POD_H + _POD_GAP) + _PAD * 2
    combined = m.combined
    flows = sum(bin(r & ~(1 << i)).count("1") for i, r in enumerate(combined))
    n = len(m.pods)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="13">',
           '<defs><marker id="arrow" viewBox="0 0 10 10" refX="10" refY="5" markerWidth="7" '
           'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#2e7d32"/>'
           '</marker></defs>',
           '<rect width="100%" height="100%" fill="white"/>',
           f'<text x="{_PAD}" y="28" font-size="18" font-weight="bold">Allowed flows on '
           f'{m.port}/{escape(m.protocol)}</text>',
           f'<text x="{_PAD}" y="50" fill="#555">{flows} of {n * (n - 1)} ordered pairs of distinct pods '
           f'may connect</text>']
    for col, ns in enumerate(namespaces):
        x = _PAD + col * (_COL_W + _COL_GAP)
        h = 30 + rows[ns] * (_POD_H + _POD_GAP) + _PAD
        out.append(f'<g class="namespace"><rect x="{x}" y="{_TOP}" width="{_COL_W}" height="{h}" rx="8" '
                   f'fill="#f3f6fb" stroke="#8aa4c8"/><text x="{x + 10}" y="{_TOP + 20}" font-weight="bold">'
                   f'{escape(ns)}</text></g>')
    out.append('<g class="flows" fill="none" stroke="#2e7d32" stroke-opacity="0.55" marker-end="url(#arrow)">')
    pod_w = _COL_W - 2 * _PAD
    for i, row in enumerate(combined):
        sx, sy = pos[i]
        for j in range(n):
            if i == j or not row >> j & 1:
                continue
            dx, dy = pos[j]
            if sx == dx:  # same namespace: bow out to the right
                x1, x2 = sx + pod_w, dx + pod_w
                cx = x1 + 40 + abs(dy - sy) / 4
                out.append(f'<path d="M{x1},{sy + _POD_H / 2} Q{cx},{(sy + dy) / 2 + _POD_H / 2} '
                           f'{x2},{dy + _POD_H / 2}"/>')
            else:
                x1, x2 = (sx + pod_w, dx) if sx < dx else (sx, dx + pod_w)
                out.append(f'<path d="M{x1},{sy + _POD_H / 2} C{(x1 + x2) / 2},{sy + _POD_H / 2} '
                           f'{(x1 + x2) / 2},{dy + _POD_H / 2} {x2},{dy + _POD_H / 2}"/>')
    out.append('</g>')
    for key, (x, y) in zip(m.pods, pos):
        name = key.split("/", 1)[1]
        out.append(f'<g class="pod"><title>{escape(key)}</title><rect x="{x}" y="{y}" width="{pod_w}" '
                   f'height="{_POD_H}" rx="6" fill="white" stroke="#37474f"/><text x="{x + 8}" '
                   f'y="{y + _POD_H / 2 + 4}">{escape(name)}</text></g>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def png(m: Matrix) -> bytes:
    try:
        import cairosvg
    except OSError as e:  # cairocffi could not load libcairo
        raise RenderError(f"-o png needs the cairo library ({e}); install libcairo2 or use -o svg") from None
    out: bytes = cairosvg.svg2png(bytestring=svg(m).encode())
    return out
