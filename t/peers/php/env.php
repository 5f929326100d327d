<?php
// The CGI environment and request body as PHP sees them, one "KEY=value"
// per line, so a test can check what the gateway sent (also served as
// index.php for PATH_INFO URLs).
header('Content-Type: text/plain');
foreach (['REQUEST_METHOD', 'SCRIPT_NAME', 'SCRIPT_FILENAME', 'PATH_INFO', 'REQUEST_URI',
          'QUERY_STRING', 'HTTPS', 'CONTENT_LENGTH', 'CONTENT_TYPE', 'DOCUMENT_URI',
          'SERVER_PROTOCOL', 'GATEWAY_INTERFACE', 'HTTP_X_TEST'] as $k) {
    echo $k, '=', array_key_exists($k, $_SERVER) ? $_SERVER[$k] : '(unset)', "\n";
}
$body = file_get_contents('php://input');
echo 'BODY_LEN=', strlen($body), "\n";
echo 'BODY_MD5=', md5($body), "\n";
foreach ($_GET as $k => $v) echo "GET_$k=$v\n";
foreach ($_POST as $k => $v) echo "POST_$k=$v\n";
