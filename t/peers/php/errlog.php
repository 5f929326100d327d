<?php
// error_log() under PHP-FPM goes to the FastCGI STDERR stream (fastcgi.logging)
error_log('marker from php: ' . ($_GET['m'] ?? 'none'));
header('Content-Type: text/plain');
echo "logged\n";
