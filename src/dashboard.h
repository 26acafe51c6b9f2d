/* Generated from dashboard.html by embed.sh: do not edit. */
static const char dashboard_html[] =
	"<!doctype html>\n"
	"<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	"<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
	"<title>baton</title></head>\n"
	"<body><h1>baton</h1><pre id=\"out\">loading...</pre>\n"
	"<script>\n"
	"async function poll() {\n"
	"  const r = await fetch('stats', {cache: 'no-store'});\n"
	"  document.getElementById('out').textContent = JSON.stringify(await r.json(), null, 2);\n"
	"}\n"
	"poll(); setInterval(poll, 1000);\n"
	"</script></body></html>\n"
;
