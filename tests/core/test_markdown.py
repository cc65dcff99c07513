from apps.core.markdown import render_markdown


def test_markdown_renders_headings_lists_code_and_tables():
    html = render_markdown(
        "# Title\n\n- a\n- b\n\n```\ncode\n```\n\n| x | y |\n|---|---|\n| 1 | 2 |"
    )
    for fragment in ("<h1>Title</h1>", "<li>a</li>", "<code>code", "<table>", "<td>1</td>"):
        assert fragment in html


def test_scripts_handlers_and_dangerous_urls_are_removed():
    html = render_markdown(
        '<script>alert(1)</script>\n\n<img src="x" onerror="alert(2)">\n\n'
        "[click](javascript:alert(3)) [data](data:text/html;base64,PHNjcmlwdD4=)\n\n"
        '<a href="https://example.com" onclick="alert(4)">ok</a>'
    )
    lowered = html.lower()
    for bad in ("<script", "onerror", "onclick", "javascript:", "data:text"):
        assert bad not in lowered
    assert 'href="https://example.com"' in html
    assert 'rel="noopener noreferrer nofollow"' in html
