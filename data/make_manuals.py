"""Regenerates the sample manuals in data/kb/manuals (a PDF and a DOCX). Run once by a developer:
    .venv/bin/pip install reportlab && .venv/bin/python data/make_manuals.py
The generated files are committed; nothing at run time needs this script."""

from pathlib import Path

KB = Path(__file__).parent / "kb" / "manuals"

BUDS_PAGES = [
    ("Lumen Buds Pro - User Manual", [
        ("In the box", "Lumen Buds Pro earbuds, wireless charging case, USB-C cable, three sizes of silicone ear tips "
         "(S, M, L). The medium tips are fitted at the factory."),
        ("Charging", "Place the earbuds in the case and close the lid. The case light shows the charge: green means "
         "more than 50%, amber 10-50%, red below 10%. A full charge of the earbuds takes about 60 minutes; 10 minutes "
         "in the case gives 2 hours of listening. The case can be charged with the USB-C cable or on any Qi wireless "
         "charger."),
    ]),
    ("Pairing and controls", [
        ("Pairing with a phone", "Open the case near your phone and hold the button on the back of the case for 3 "
         "seconds until the light blinks white. Select Lumen Buds Pro in your phone's Bluetooth settings. The earbuds "
         "remember up to 8 devices and reconnect automatically."),
        ("Touch controls", "Tap once to play or pause. Tap twice to skip to the next track, three times to go back. "
         "Press and hold to switch between noise cancellation and transparency mode."),
        ("Noise cancellation", "Active noise cancellation reduces low-frequency noise such as engines by up to 35 dB. "
         "Battery life is 6 hours with noise cancellation on and 8 hours with it off."),
    ]),
    ("Care, troubleshooting and safety", [
        ("Water resistance", "The earbuds are rated IPX4: they resist sweat and splashes but must not be submerged. "
         "The charging case is not water resistant."),
        ("Resetting the earbuds", "If the earbuds do not connect, put both in the case, keep the lid open and hold "
         "the case button for 15 seconds until the light blinks amber three times. Then pair them again."),
        ("One earbud is silent", "Clean the charging contacts with a dry cotton swab, put the earbuds back in the case "
         "for 10 seconds, then try again. If the problem persists, reset the earbuds."),
        ("Safety", "Listening at high volume for long periods can damage your hearing. Do not expose the battery to "
         "temperatures above 45 degrees Celsius."),
    ]),
]

WATCH = [
    ("h1", "流明手表 S2 使用说明书"),
    ("p", "感谢您选择流明手表 S2（Lumen Watch S2）。使用前请仔细阅读本说明书。"),
    ("h2", "包装清单"),
    ("p", "手表主机、磁吸充电底座、USB-C 充电线、快速入门指南。"),
    ("h2", "充电与续航"),
    ("p", "将手表放在磁吸充电底座上即可充电，充满约需 90 分钟。典型使用下续航最长 7 天；开启常亮显示和 GPS 时约 30 小时。"
          "电量低于 10% 时手表会自动进入省电模式，仅显示时间。"),
    ("h2", "开机与配对"),
    ("p", "长按右侧按键 3 秒开机。在手机上安装“流明健康”App，打开蓝牙，按 App 提示扫描手表屏幕上的二维码完成配对。"
          "一块手表同一时间只能与一部手机配对。"),
    ("h2", "主要功能"),
    ("table", [("功能", "说明"), ("心率监测", "全天 24 小时心率监测，异常心率提醒"), ("血氧检测", "手动或夜间自动检测"),
               ("运动模式", "支持 100 多种运动模式，内置 GPS"), ("防水", "5ATM 防水，可用于游泳，不可用于潜水和热水浴")]),
    ("h2", "常见问题"),
    ("p", "手表无法开机：请将手表放在充电底座上充电至少 30 分钟后再试。"),
    ("p", "恢复出厂设置：进入“设置 > 系统 > 恢复出厂设置”。恢复后所有数据将被清除，需要重新配对。"),
    ("h2", "保修"),
    ("p", "流明手表 S2 享有自签收之日起 2 年有限保修，电池保修 1 年。表带属于易耗品，不在保修范围内。"),
]


def make_pdf(path: Path) -> None:
    from reportlab.lib.pagesizes import A4
    from reportlab.lib.styles import getSampleStyleSheet
    from reportlab.platypus import PageBreak, Paragraph, SimpleDocTemplate, Spacer

    styles = getSampleStyleSheet()
    story = []
    for i, (title, sections) in enumerate(BUDS_PAGES):
        if i:
            story.append(PageBreak())
        story.append(Paragraph(title, styles["Title"] if i == 0 else styles["Heading1"]))
        for heading, body in sections:
            story += [Paragraph(heading, styles["Heading2"]), Paragraph(body, styles["BodyText"]), Spacer(1, 6)]
    doc = SimpleDocTemplate(str(path), pagesize=A4, title="Lumen Buds Pro - User Manual", author="Lumen Electronics")
    doc.build(story)


def make_docx(path: Path) -> None:
    import docx

    document = docx.Document()
    document.core_properties.title = "流明手表 S2 使用说明书"
    for kind, value in WATCH:
        if kind == "h1":
            document.add_heading(value, level=1)
        elif kind == "h2":
            document.add_heading(value, level=2)
        elif kind == "p":
            document.add_paragraph(value)
        else:
            table = document.add_table(rows=0, cols=2)
            for left, right in value:
                cells = table.add_row().cells
                cells[0].text, cells[1].text = left, right
    document.save(str(path))


if __name__ == "__main__":
    KB.mkdir(parents=True, exist_ok=True)
    make_pdf(KB / "lumen-buds-pro-manual.pdf")
    make_docx(KB / "lumen-watch-s2-manual.docx")
    print("wrote", *sorted(p.name for p in KB.iterdir()))
