<?php
// What the server told PHP about this request: a few CGI variables, shown
// to check the FastCGI gateway. Values are escaped; phpinfo() is not used on
// purpose (it prints far more than a demo should).
header('Content-Type: text/html; charset=utf-8');
$names = [
    'SERVER_SOFTWARE', 'GATEWAY_INTERFACE', 'SERVER_PROTOCOL', 'REQUEST_METHOD',
    'REQUEST_URI', 'DOCUMENT_URI', 'SCRIPT_NAME', 'SCRIPT_FILENAME', 'PATH_INFO',
    'QUERY_STRING', 'DOCUMENT_ROOT', 'SERVER_NAME', 'SERVER_ADDR', 'SERVER_PORT',
    'REMOTE_ADDR', 'REMOTE_PORT', 'HTTPS', 'HTTP_HOST', 'HTTP_USER_AGENT',
];
?>
<!DOCTYPE html>
<html lang="en">
<head><meta charset="utf-8"><title>Portico + PHP</title></head>
<body>
<h1>PHP <?= htmlspecialchars(PHP_VERSION) ?> via FastCGI</h1>
<table border="1" cellpadding="4">
<?php foreach ($names as $n): ?>
<tr><th align="left"><?= $n ?></th><td><code><?= htmlspecialchars((string)($_SERVER[$n] ?? '')) ?></code></td></tr>
<?php endforeach; ?>
</table>
<p><a href="/">back</a></p>
</body>
</html>
