from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from io import BytesIO

import pytest
import qrcode
import zxingcpp
from PIL import Image, ImageDraw, PngImagePlugin
from qrcode import constants

from shortener.errors import InvalidParameterError
from shortener.print_fonts import fit, printable
from shortener.print_logo import Logo
from shortener.qr import QROptions, UnreadableCodeError, render_checked, render_png, render_svg

DATA = "http://localhost:5000/spring-flyer?qr=1"
SVG = "{http://www.w3.org/2000/svg}"
ECC_LEVELS = {
    "L": constants.ERROR_CORRECT_L,
    "M": constants.ERROR_CORRECT_M,
    "Q": constants.ERROR_CORRECT_Q,
    "H": constants.ERROR_CORRECT_H,
}
RUN = re.compile(r"M(\d+) (\d+)h(\d+)v1h-(\d+)z")


def expected_matrix(data: str, ecc: str, margin: int) -> list[list[bool]]:
    code = qrcode.QRCode(error_correction=ECC_LEVELS[ecc], border=margin)
    code.add_data(data)
    code.make(fit=True)
    return code.get_matrix()


def dark_cells(matrix: list[list[bool]]) -> set[tuple[int, int]]:
    return {(x, y) for y, row in enumerate(matrix) for x, dark in enumerate(row) if dark}


def decode(image: Image.Image) -> list[str]:
    return [barcode.text for barcode in zxingcpp.read_barcodes(image)]


def open_png(png: bytes) -> Image.Image:
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    return Image.open(BytesIO(png))


def parse_svg(svg: bytes) -> ET.Element:
    return ET.fromstring(svg)  # noqa: S314 - our own output, not untrusted input


def path_cells(d: str) -> set[tuple[int, int]]:
    """Unit squares covered by a path made only of one-module-high rectangles."""
    assert re.fullmatch(f"(?:{RUN.pattern})+", d)
    cells: set[tuple[int, int]] = set()
    for match in RUN.finditer(d):
        x, y, width, back = (int(group) for group in match.groups())
        assert width == back
        cells.update((x + dx, y) for dx in range(width))
    return cells


# --- from_args ---------------------------------------------------------------------------------


def test_from_args_defaults_when_nothing_is_given() -> None:
    options = QROptions.from_args({})

    assert options == QROptions(size=512, margin=4, ecc="M", fg="#000000", bg="#ffffff")


def test_from_args_treats_blank_values_as_absent() -> None:
    blank = {"size": "", "margin": " ", "ecc": "", "fg": "", "bg": ""}

    assert QROptions.from_args(blank) == QROptions()


def test_from_args_ignores_unknown_parameters() -> None:
    options = QROptions.from_args({"size": "300", "utm_source": "flyer", "format": "png"})

    assert options == QROptions(size=300)


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("300", 300),
        (" 256 ", 256),
        ("+300", 300),
        ("0300", 300),
        ("64", 64),
        ("4096", 4096),
        ("10", 64),
        ("0", 64),
        ("-5", 64),
        ("99999", 4096),
        ("9" * 5000, 4096),
        ("-" + "9" * 5000, 64),
    ],
)
def test_from_args_clamps_size_to_64_4096(raw: str, expected: int) -> None:
    assert QROptions.from_args({"size": raw}).size == expected


@pytest.mark.parametrize(
    ("raw", "expected"), [("0", 0), ("2", 2), ("16", 16), ("-3", 0), ("40", 16)]
)
def test_from_args_clamps_margin_to_0_16(raw: str, expected: int) -> None:
    assert QROptions.from_args({"margin": raw}).margin == expected


@pytest.mark.parametrize(
    ("raw", "expected"), [("l", "L"), ("m", "M"), ("q", "Q"), ("h", "H"), ("H", "H"), (" q ", "Q")]
)
def test_from_args_reads_ecc_case_insensitively(raw: str, expected: str) -> None:
    assert QROptions.from_args({"ecc": raw}).ecc == expected


@pytest.mark.parametrize(
    ("name", "raw", "expected"),
    [
        ("fg", "#1a237e", "#1a237e"),
        ("fg", "1A237E", "#1a237e"),
        ("fg", "#35A", "#3355aa"),
        ("fg", "35a", "#3355aa"),
        ("bg", "#FFF8E1", "#fff8e1"),
        ("bg", "fff", "#ffffff"),
        ("bg", "Transparent", "transparent"),
    ],
)
def test_from_args_normalises_colours_to_lowercase_rrggbb(
    name: str, raw: str, expected: str
) -> None:
    assert getattr(QROptions.from_args({name: raw}), name) == expected


def test_from_args_accepts_light_on_dark_codes() -> None:
    options = QROptions.from_args({"fg": "#fff", "bg": "#000"})

    assert (options.fg, options.bg) == ("#ffffff", "#000000")


def test_from_args_skips_the_contrast_check_on_a_transparent_background() -> None:
    options = QROptions.from_args({"fg": "#ffffff", "bg": "transparent"})

    assert (options.fg, options.bg) == ("#ffffff", "transparent")


def test_from_args_accepts_contrast_just_above_the_minimum() -> None:
    # #999999 on white is about 2.85:1.
    assert QROptions.from_args({"fg": "#999999"}).fg == "#999999"


@pytest.mark.parametrize(
    ("args", "name"),
    [
        ({"size": "big"}, "size"),
        ({"size": "12.5"}, "size"),
        ({"size": "1_000"}, "size"),
        ({"size": "\u0661\u0662\u0663"}, "size"),
        ({"size": "300px"}, "size"),
        ({"margin": "-x"}, "margin"),
        ({"margin": "--2"}, "margin"),
        ({"ecc": "Z"}, "ecc"),
        ({"ecc": "medium"}, "ecc"),
        ({"fg": "red-ish"}, "fg"),
        ({"fg": "red"}, "fg"),
        ({"fg": "transparent"}, "fg"),
        ({"fg": "#12345"}, "fg"),
        ({"bg": "#12345g"}, "bg"),
        ({"bg": "##ffffff"}, "bg"),
        ({"fg": "#123456", "bg": "123456"}, "fg"),
        ({"fg": "#fff"}, "fg"),
        ({"fg": "#777777", "bg": "#888888"}, "fg"),
        ({"fg": "#bbbbbb"}, "fg"),
        ({"fg": "#1a237e", "bg": "#000000"}, "fg"),
    ],
)
def test_from_args_rejects_nonsense_naming_the_parameter(args: dict[str, str], name: str) -> None:
    with pytest.raises(InvalidParameterError) as caught:
        QROptions.from_args(args)

    assert caught.value.name == name
    assert caught.value.status == 400
    assert caught.value.code == "invalid_parameter"
    assert caught.value.message.startswith(f"{name}: ")


def test_from_args_explains_a_malformed_colour() -> None:
    with pytest.raises(InvalidParameterError) as caught:
        QROptions.from_args({"bg": "#12345g"})

    assert caught.value.message == (
        "bg: must be a hex colour like #1a237e or #fff, or 'transparent', got '#12345g'"
    )


def test_from_args_explains_identical_colours() -> None:
    with pytest.raises(InvalidParameterError, match="same colour as bg"):
        QROptions.from_args({"fg": "ABCDEF", "bg": "#abcdef"})


def test_from_args_explains_low_contrast() -> None:
    with pytest.raises(InvalidParameterError, match=r"contrast .* is 1\.\d\d:1, too low to scan"):
        QROptions.from_args({"fg": "#777777", "bg": "#888888"})


def test_from_args_crops_huge_values_in_messages() -> None:
    with pytest.raises(InvalidParameterError) as caught:
        QROptions.from_args({"ecc": "x" * 10_000})

    assert len(caught.value.message) < 200


@pytest.mark.parametrize(
    "fields",
    [
        {"size": 10},
        {"margin": 17},
        {"ecc": "m"},
        {"fg": "#FFFFFF"},
        {"fg": "red"},
        {"bg": '#fff"/><script/>'},
    ],
)
def test_options_refuse_unnormalised_values_when_built_directly(fields: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="must be"):
        QROptions(**fields)  # type: ignore[arg-type]


# --- render_png --------------------------------------------------------------------------------


@pytest.mark.parametrize("ecc", ["L", "M", "Q", "H"])
def test_png_decodes_to_the_data_at_every_ecc_level(ecc: str) -> None:
    image = open_png(render_png(DATA, QROptions(ecc=ecc)))

    assert decode(image) == [DATA]


@pytest.mark.parametrize(
    "args",
    [
        {},
        {"size": "64"},
        {"size": "64", "margin": "0"},
        {"size": "100", "margin": "1", "ecc": "h"},
        {"size": "333", "margin": "16"},
        {"size": "1000", "margin": "2"},
        {"size": "4096", "ecc": "l"},
        {"fg": "#1a237e", "bg": "#fff8e1"},
        {"fg": "#1a237e", "bg": "#fff8e1", "size": "200", "margin": "1"},
        {"fg": "#ffffff", "bg": "#000000"},
        {"fg": "#0b6623", "bg": "#f0f0f0", "ecc": "q"},
    ],
)
def test_png_decodes_and_is_exactly_size_pixels_square(args: dict[str, str]) -> None:
    options = QROptions.from_args(args)

    image = open_png(render_png(DATA, options))

    assert image.size == (options.size, options.size)
    assert image.mode == "RGB"
    assert decode(image) == [DATA]


def test_png_centres_whole_pixel_modules_and_uses_the_colours() -> None:
    options = QROptions.from_args({"size": "200", "margin": "2", "fg": "#1a237e", "bg": "#fff8e1"})
    modules = len(expected_matrix(DATA, "M", 2))
    box = 200 // modules
    offset = (200 - modules * box) // 2

    image = open_png(render_png(DATA, options)).convert("RGB")

    assert image.getpixel((0, 0)) == (0xFF, 0xF8, 0xE1)
    assert image.getpixel((199, 199)) == (0xFF, 0xF8, 0xE1)
    # The top-left finder pattern starts right after the margin: a solid dark square's corner.
    corner = offset + 2 * box
    assert image.getpixel((corner, corner)) == (0x1A, 0x23, 0x7E)
    assert image.getpixel((corner - 1, corner - 1)) == (0xFF, 0xF8, 0xE1)
    assert image.getpixel((corner + box - 1, corner + box - 1)) == (0x1A, 0x23, 0x7E)


def test_png_draws_every_module_of_the_code() -> None:
    options = QROptions(size=400, margin=3, ecc="Q")
    matrix = expected_matrix(DATA, "Q", 3)
    box = 400 // len(matrix)
    offset = (400 - len(matrix) * box) // 2

    image = open_png(render_png(DATA, options)).convert("L")

    for y, row in enumerate(matrix):
        for x, dark in enumerate(row):
            centre = (offset + x * box + box // 2, offset + y * box + box // 2)
            assert image.getpixel(centre) == (0 if dark else 255)


def test_png_with_transparent_background_is_rgba_and_scans_on_paper() -> None:
    options = QROptions.from_args({"bg": "transparent", "fg": "#1a237e"})

    image = open_png(render_png(DATA, options))

    assert image.mode == "RGBA"
    assert image.size == (512, 512)
    corner = image.getpixel((0, 0))
    assert isinstance(corner, tuple)
    assert corner[3] == 0
    paper = Image.new("RGBA", image.size, (255, 255, 255, 255))
    assert decode(Image.alpha_composite(paper, image).convert("RGB")) == [DATA]


def test_png_grows_past_size_when_the_code_has_more_modules_than_pixels() -> None:
    data = DATA + "&note=" + "x" * 600
    modules = len(expected_matrix(data, "H", 4))
    assert modules > 64

    image = open_png(render_png(data, QROptions(size=64, ecc="H")))

    assert image.size == (modules, modules)
    assert decode(image) == [data]


# --- render_svg --------------------------------------------------------------------------------


def test_svg_is_a_standalone_document_of_size_pixels_in_module_units() -> None:
    options = QROptions.from_args({"size": "300", "fg": "#1A237E", "bg": "fff8e1"})
    modules = len(expected_matrix(DATA, "M", 4))

    svg = render_svg(DATA, options)
    root = parse_svg(svg)

    assert svg.startswith(b'<?xml version="1.0" encoding="UTF-8"?>')
    assert root.tag == f"{SVG}svg"
    assert root.get("width") == "300"
    assert root.get("height") == "300"
    assert root.get("viewBox") == f"0 0 {modules} {modules}"
    assert root.get("shape-rendering") == "crispEdges"
    (rect,) = root.findall(f"{SVG}rect")
    assert (rect.get("width"), rect.get("height")) == (str(modules), str(modules))
    assert rect.get("fill") == "#fff8e1"
    (path,) = root.findall(f"{SVG}path")
    assert path.get("fill") == "#1a237e"
    assert [child.tag for child in root] == [f"{SVG}rect", f"{SVG}path"]


def test_svg_with_transparent_background_has_no_rect() -> None:
    root = parse_svg(render_svg(DATA, QROptions.from_args({"bg": "transparent"})))

    assert root.findall(f"{SVG}rect") == []
    assert len(root.findall(f"{SVG}path")) == 1


@pytest.mark.parametrize(("ecc", "margin"), [("L", 4), ("M", 0), ("Q", 1), ("H", 16)])
def test_svg_path_covers_exactly_the_dark_modules(ecc: str, margin: int) -> None:
    matrix = expected_matrix(DATA, ecc, margin)

    root = parse_svg(render_svg(DATA, QROptions(ecc=ecc, margin=margin)))

    (path,) = root.findall(f"{SVG}path")
    assert path_cells(path.get("d", "")) == dark_cells(matrix)
    assert root.get("viewBox") == f"0 0 {len(matrix)} {len(matrix)}"


def test_svg_path_merges_horizontal_runs() -> None:
    root = parse_svg(render_svg(DATA, QROptions()))

    (path,) = root.findall(f"{SVG}path")
    # The top row of both upper finder patterns is a run of seven modules.
    assert path.get("d", "").startswith("M4 4h7v1h-7z")


def test_svg_rasterised_from_its_path_decodes_to_the_data() -> None:
    root = parse_svg(render_svg(DATA, QROptions(ecc="H", margin=4)))
    (path,) = root.findall(f"{SVG}path")
    modules = int(root.get("viewBox", "").split()[2])
    box = 8
    image = Image.new("L", (modules * box, modules * box), 255)
    draw = ImageDraw.Draw(image)
    for x, y in path_cells(path.get("d", "")):
        draw.rectangle((x * box, y * box, (x + 1) * box - 1, (y + 1) * box - 1), fill=0)

    assert decode(image) == [DATA]


# --- captions and logos ------------------------------------------------------------------------

def logo(colour: tuple[int, int, int] = (200, 30, 30), size: tuple[int, int] = (40, 20)) -> Logo:
    buffer = BytesIO()
    Image.new("RGB", size, colour).save(buffer, format="PNG")
    return Logo.from_upload(buffer.getvalue())


def test_from_args_reads_a_caption_and_a_logo_size() -> None:
    options = QROptions.from_args({"caption": "  Scan me  ", "logo_size": "35"})

    assert (options.caption, options.logo_size) == ("Scan me", 35)


@pytest.mark.parametrize(("raw", "expected"), [("5", 10), ("90", 50), ("", 30)])
def test_from_args_clamps_the_logo_size(raw: str, expected: int) -> None:
    assert QROptions.from_args({"logo_size": raw}).logo_size == expected


@pytest.mark.parametrize("caption", ["x" * 81, "tab\there", "new\nline"])
def test_from_args_refuses_a_caption_that_is_long_or_not_one_line(caption: str) -> None:
    with pytest.raises(InvalidParameterError) as refused:
        QROptions.from_args({"caption": caption})

    assert refused.value.name == "caption"


def test_a_logo_clears_a_centred_square_of_modules_and_forces_error_correction_h() -> None:
    plain = expected_matrix(DATA, "H", 4)
    root = parse_svg(render_svg(DATA, QROptions(ecc="L"), logo()))

    (path,) = root.findall(f"{SVG}path")
    cells = path_cells(path.get("d", ""))
    modules = len(plain)
    # The plate is centred, and everything outside it is the plain code at level H.
    xs = sorted({x for x, y in dark_cells(plain) - cells})
    assert xs and xs[0] == modules - 1 - xs[-1]
    assert cells <= dark_cells(plain)
    (image,) = root.findall(f"{SVG}image")
    assert image.get("href", "").startswith("data:image/png;base64,")


def test_a_png_logo_is_re_encoded_so_only_its_pixels_are_kept() -> None:
    buffer = BytesIO()
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "secret")
    Image.new("RGB", (8, 8), "red").save(buffer, format="PNG", pnginfo=info)

    kept = Logo.from_upload(buffer.getvalue())

    assert b"secret" not in kept.data
    assert (kept.kind, kept.width, kept.height) == ("png", 8, 8)


def test_a_caption_makes_the_png_taller_and_the_code_still_reads() -> None:
    image = open_png(render_png(DATA, QROptions(size=300, caption="Spring sale")))

    assert image.width == 300 and image.height > 300
    assert decode(image.convert("RGB")) == [DATA]


@pytest.mark.parametrize("fmt", ["png", "svg"])
def test_render_checked_refuses_a_logo_too_large_to_read(fmt: str) -> None:
    with pytest.raises(UnreadableCodeError):
        render_checked(DATA, QROptions(logo_size=50), fmt=fmt, logo=logo())

    assert render_checked(DATA, QROptions(), fmt=fmt, logo=logo())


@pytest.mark.parametrize(
    ("text", "drawn"),
    [("Store flyer", "Store flyer"), ("Café — Noël", "Café — Noël"), ("Dźwig", "Dzwig"),
     ("東京 shop", "?? shop"), ("tab\tand\nline", "tab and line")],
)
def test_text_is_drawn_in_characters_the_typeface_has(text: str, drawn: str) -> None:
    assert printable(text) == drawn


def test_text_too_wide_shrinks_then_is_cut_short() -> None:
    assert fit("Shelf", width=100, size=10, min_size=5) == ("Shelf", 10)
    shown, size = fit("A long touchpoint name", width=60, size=10, min_size=8)
    assert size == 8 and shown.endswith("…") and len(shown) < len("A long touchpoint name")
