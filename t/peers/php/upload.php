<?php
// multipart/form-data as PHP decoded it: each file's name, size and MD5,
// each plain field; the test compares with what curl -F sent.
header('Content-Type: text/plain');
foreach ($_FILES as $field => $f) {
    echo "FILE $field name=", $f['name'], ' size=', $f['size'], ' error=', $f['error'],
        ' md5=', $f['error'] === 0 ? md5_file($f['tmp_name']) : '-', "\n";
}
foreach ($_POST as $k => $v) echo "POST $k=$v\n";
