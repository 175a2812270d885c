"""Pictures that are neither a cat nor a dog, for training the "neither" detector.

  .cache/venv-model/bin/python model/negatives.py select   # rewrite model/negatives/manifest.tsv

The pictures come from Debian packages that model/negatives.sh downloads
(pinned versions, sha256 checked) and unpacks into $NEGATIVES_DIR (default
.cache/negatives/x/<package>/...). Nothing of them is committed: the manifest
(model/negatives/manifest.tsv) names every file used, its package, version,
kind and licence, and `load` reads them back from the unpacked packages.

`select` chooses the files by fixed rules (below), deterministically, so the
manifest changes only when the rules or the packages do. Files whose name
says cat, dog, kitten, puppy (or dingo) are left out.

Kinds: wallpaper (photos and abstract art), texture (game textures: stone,
metal, wood, terrain, grass, skin), clipart (drawings of everything:
people, objects, animals, symbols), cutout (Tux Paint stamps: photos and
drawings of animals, food, objects, people on a transparent background) and
silhouette (the outline of a Tux Paint animal stamp, filled flat, on a light
background: made here from the stamp's alpha channel) and photo
(photographs of people, objects, places, vehicles and other animals, as
whole pictures: OpenCV's sample pictures and the photographs in its
tutorials, the GIMP manual's filter examples, Tux Paint's photo templates,
Palapeli's puzzle photos) -- without them the learned score found every
photograph of a person or a thing pet-like -- and render (Sweet Home 3D's
furniture catalogues: each piece's 128-pixel icon, a rendering of one
object -- cups, appliances, vehicles, plants, people, furniture -- put on
white): single objects, which the photographs above have too few of.
"""

from __future__ import annotations

import csv
import hashlib
import io
import os
import re
import sys
import zipfile
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
MANIFEST = ROOT / "model" / "negatives" / "manifest.tsv"
NEGATIVES_DIR = ROOT / os.environ.get("NEGATIVES_DIR", ".cache/negatives") / "x"

# package -> (version, licence as its debian/copyright states it for these files)
PACKAGES = {
    "gnome-backgrounds": ("43.1-1", "CC-BY-SA-3.0 / CC-BY-SA-2.0 / CC-BY-2.0 / GPL-2+ (per picture in the package's copyright)"),
    "mate-backgrounds": ("1.26.0-1", "GPL-2+ / CC-BY-SA-4.0 (see the package's copyright)"),
    "plasma-workspace-wallpapers": ("4:5.27.5-2", "GPL-2+"),
    "ukui-wallpapers": ("20.04.3-1.1", "CC-BY-SA-3.0"),
    "sway-backgrounds": ("1.7-6", "Expat"),
    "lomiri-wallpapers": ("20.04.0-2", "CC-BY-SA-3.0 / CC-BY-4.0 (see the package's copyright)"),
    "desktop-base": ("12.0.6+nmu1~deb12u1", "GPL-2+ / CC-BY-SA-3.0 (see the package's copyright)"),
    "openarena-081-textures": ("0.8.5split-14", "GPL-2+"),
    "colobot-common-textures": ("0.2.0-2", "GPL-3+"),
    "openclipart-png": ("1:0.18+dfsg-19", "public domain (Open Clip Art Library)"),
    "tuxpaint-stamps-default": ("2022.06.04-1", "GPL-2"),
    "tuxpaint-data": ("1:0.9.28-sdl2-1", "GPL-2+"),
    "palapeli-data": ("4:22.12.3-1", "GPL-2+"),
    "opencv-doc": ("4.6.0+dfsg-12", "Apache-2.0 AND BSD-3-Clause (samples data: BSD-3-Clause)"),
    "gimp-help-en": ("2.10.34-2", "GFDL-1.2 (the GIMP manual)"),
    "sweethome3d-furniture": ("1.8-1", "CC0 / CC-BY-3.0 / CC-BY-3.0-US (per catalogue in the package's copyright)"),
}

# English and (openclipart has many) Italian words for cats, dogs and pets.
PETS = re.compile(
    r"(^|[^a-z])(cats?|housecats|kittens?|kitty|dogs?|doggy|pupp(y|ies)|dingo|pets?|paws?|gatt[oi]|gattino|micio|can[ei]|cagnolin[oi]|cucciol[oi])([^a-z]|$)",
    re.I,
)
IMAGE = re.compile(r"\.(png|jpe?g|webp)$", re.I)
# OpenCV's tutorials show a dog, a puppy and a kitten under names that do not
# say so. Found by looking at the 80 of its pictures that the backbone found
# most pet-like (dogs and cats appear in these tutorials' pictures only);
# the whole tutorial's pictures are left out.
OPENCV_PETS = re.compile(
    r"/(Remap_|Morphology_1_|Threshold_Tutorial_|Pyramids_|Histogram_Equalization_|CopyMakeBorder_"
    r"|retina|Template_Matching_Template_Theory_|Template_Matching_Correl_|11_demo|matting_results)"
)


def _stable_pick(items: list[str], n: int, salt: str) -> list[str]:
    """n items chosen by hash of the name: deterministic and spread over the list."""
    ranked = sorted(items, key=lambda s: hashlib.sha256((salt + s).encode()).hexdigest())
    return sorted(ranked[:n])


def _files(package: str, under: str = "") -> list[str]:
    base = NEGATIVES_DIR / package
    root = base / under
    if not root.is_dir():
        raise SystemExit(f"{root} is missing: run model/build.sh --negatives first")
    return sorted(str(p.relative_to(base)) for p in root.rglob("*") if p.is_file() and IMAGE.search(p.name))


def _keep(rel: str) -> bool:
    return not PETS.search(rel.replace("/", " ").replace("_", " ").replace("-", " "))


def select() -> list[dict]:
    rows = []

    def add(package, member, kind, transform=""):
        version, licence = PACKAGES[package]
        rows.append(dict(package=package, version=version, member=member, transform=transform, kind=kind, licence=licence))

    # Wallpapers: every picture, one size of each.
    for m in _files("gnome-backgrounds", "usr/share/backgrounds"):
        add("gnome-backgrounds", m, "wallpaper")
    for m in _files("mate-backgrounds", "usr/share/backgrounds"):
        if not re.search(r"_\d+x\d+\.", m):  # Elephants in three sizes: keep one
            add("mate-backgrounds", m, "wallpaper")
    for m in _files("plasma-workspace-wallpapers", "usr/share/wallpapers"):
        if m.endswith("contents/screenshot.png"):  # the small rendering of each wallpaper
            add("plasma-workspace-wallpapers", m, "wallpaper")
    for m in _files("ukui-wallpapers", "usr/share/backgrounds"):
        add("ukui-wallpapers", m, "wallpaper")
    for m in _files("sway-backgrounds", "usr/share/backgrounds"):
        if "1920x1080" in m:
            add("sway-backgrounds", m, "wallpaper")
    for m in _files("lomiri-wallpapers", "usr/share/backgrounds"):
        add("lomiri-wallpapers", m, "wallpaper")
    themes = {}
    for m in _files("desktop-base", "usr/share/desktop-base"):
        if "/wallpaper/contents/images/" in m and m.endswith(".png"):
            themes.setdefault(m.split("/wallpaper/")[0], []).append(m)
    for theme, ms in sorted(themes.items()):
        add("desktop-base", sorted(ms)[0], "wallpaper")

    # Textures: a spread of 400 of the game's photographic JPEG textures
    # (stone, metal, wood, terrain, skin, ...), and Colobot's textures.
    pk3 = "usr/share/games/openarena/baseoa/pak4-textures.pk3"
    with zipfile.ZipFile(NEGATIVES_DIR / "openarena-081-textures" / pk3) as z:
        inner = [n for n in z.namelist() if n.lower().endswith(".jpg") and z.getinfo(n).file_size > 4000]
    for n in _stable_pick(inner, 400, "openarena"):
        add("openarena-081-textures", f"{pk3}!{n}", "texture")
    for m in _files("colobot-common-textures", "usr/share/games/colobot"):
        if _keep(m):
            add("colobot-common-textures", m, "texture")

    # Clip art: up to 6 drawings from each of its folders (they are many
    # and uneven: 1378 stars, 9 cars).
    folders = {}
    for m in _files("openclipart-png", "usr/share/openclipart/png"):
        if _keep(m):
            folders.setdefault(m.rsplit("/", 1)[0], []).append(m)
    for folder, ms in sorted(folders.items()):
        for m in _stable_pick(ms, 6, "openclipart"):
            add("openclipart-png", m, "clipart")

    # Tux Paint stamps: all of them but cats and dogs; animals also as
    # flat silhouettes (horses, foxes, birds, ...: shapes that are not pets).
    for m in _files("tuxpaint-stamps-default", "usr/share/tuxpaint/stamps"):
        if not _keep(m):
            continue
        add("tuxpaint-stamps-default", m, "cutout")
        if "/stamps/animals/" in m:
            add("tuxpaint-stamps-default", m, "silhouette", "silhouette")

    # Photographs: whole JPEG pictures (no small icons or screenshots' PNGs).
    # The GIMP manual's 300 are mostly one Taj Mahal photo under filters:
    # 80 of them, spread.
    # The same file shipped twice (OpenCV's samples are also in its
    # tutorials) is used once.
    seen = set()

    def photos(package, under, min_bytes=8000):
        base = NEGATIVES_DIR / package
        out = []
        for m in _files(package, under):
            path = base / m
            if not (re.search(r"\.jpe?g$", m, re.I) and _keep(m) and path.stat().st_size >= min_bytes):
                continue
            digest = hashlib.sha256(path.read_bytes()).hexdigest()
            if digest not in seen:
                seen.add(digest)
                out.append(m)
        return out

    for m in photos("opencv-doc", "usr/share/doc/opencv-doc"):
        if not OPENCV_PETS.search(m):
            add("opencv-doc", m, "photo")
    for m in _stable_pick(photos("gimp-help-en", "usr/share/gimp/2.0/help/en/images"), 80, "gimp"):
        add("gimp-help-en", m, "photo")
    for m in photos("tuxpaint-data", "usr/share/tuxpaint/templates"):
        add("tuxpaint-data", m, "photo")
    for m in photos("palapeli-data", "usr/share/palapeli"):
        add("palapeli-data", m, "photo")

    # Renderings of single objects: each catalogue's icons, named by the
    # catalogue (its pieces named cat or dog left out: a bulldog, a Siamese).
    for archive in _archives("sweethome3d-furniture", "usr/share/sweethome3d/furniture", ".sh3f"):
        for icon in _catalogue_icons(NEGATIVES_DIR / "sweethome3d-furniture" / archive):
            add("sweethome3d-furniture", f"{archive}!{icon}", "render", "white")
    return rows


def _archives(package: str, under: str, suffix: str) -> list[str]:
    base = NEGATIVES_DIR / package
    return sorted(str(p.relative_to(base)) for p in (base / under).glob(f"*{suffix}"))


def _catalogue_icons(archive: Path) -> list[str]:
    """The icons of a Sweet Home 3D furniture catalogue whose piece's name is not a pet's."""
    with zipfile.ZipFile(archive) as z:
        text = z.read("PluginFurnitureCatalog.properties").decode("latin-1")
    entries = {}
    for line in text.splitlines():
        m = re.match(r"(name|icon)#(\d+)=(.*)", line.strip())
        if m:
            entries.setdefault(m[2], {})[m[1]] = m[3].strip()
    icons = set()
    for e in entries.values():
        if "icon" in e and _keep(e.get("name", "")) and _keep(e["icon"]) and IMAGE.search(e["icon"]):
            icons.add(e["icon"].lstrip("/"))
    return sorted(icons)


def load(row: dict) -> Image.Image:
    """The picture a manifest row names, as RGB (alpha dropped as the classifier does)."""
    base = NEGATIVES_DIR / row["package"]
    member = row["member"]
    if "!" in member:
        archive, inner = member.split("!", 1)
        with zipfile.ZipFile(base / archive) as z:
            im = Image.open(io.BytesIO(z.read(inner)))
            im.load()
    else:
        im = Image.open(base / member)
        im.load()
    if row["transform"] == "silhouette":
        return silhouette(im, seed=row["member"])
    if row["transform"] == "white":
        rgba = im.convert("RGBA")
        canvas = Image.new("RGB", rgba.size, (255, 255, 255))
        canvas.paste(rgba, mask=rgba.getchannel("A"))
        return canvas
    return im.convert("RGB")


def silhouette(im: Image.Image, seed: str) -> Image.Image:
    """The stamp's shape filled with one dark colour on a light one, with a margin."""
    alpha = im.convert("RGBA").getchannel("A").point(lambda a: 255 if a > 127 else 0)
    h = hashlib.sha256(seed.encode()).digest()
    ink = (h[0] % 60, h[1] % 60, h[2] % 60)
    paper = (195 + h[3] % 60, 195 + h[4] % 60, 195 + h[5] % 60)
    w, hgt = im.size
    side = int(max(w, hgt) * 1.3)
    canvas = Image.new("RGB", (side, side), paper)
    shape = Image.new("RGB", (w, hgt), ink)
    canvas.paste(shape, ((side - w) // 2, (side - hgt) // 2), alpha)
    return canvas


def read_manifest() -> list[dict]:
    with open(MANIFEST, newline="") as f:
        return list(csv.DictReader(f, delimiter="\t"))


def main(argv: list[str]) -> int:
    if argv[1:] != ["select"]:
        print(__doc__, file=sys.stderr)
        return 2
    rows = select()
    MANIFEST.parent.mkdir(parents=True, exist_ok=True)
    with open(MANIFEST, "w", newline="") as f:
        w = csv.DictWriter(f, ["package", "version", "member", "transform", "kind", "licence"], delimiter="\t", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    kinds = {}
    for r in rows:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    print(f"wrote {MANIFEST.relative_to(ROOT)}: {len(rows)} pictures {kinds}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
