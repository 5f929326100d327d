<?php
// An RFC 3875 6.2.2 local redirect: a head that is only "Location: /path".
// Plain PHP always adds Status 302, X-Powered-By and a Content-type; these
// lines take them away, as an app that wants the server to serve another
// URI internally has to.
ini_set('default_mimetype', '');
header_remove('X-Powered-By');
header('Location: ' . ($_GET['to'] ?? '/other.php?from=local'));
http_response_code(200);
