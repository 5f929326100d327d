<?php
// ?mib=N: N MiB in 64 KiB blocks, block i being the 8-byte unit
// chr(65 + i % 26) . "0123456" repeated; the test builds the same bytes.
header('Content-Type: application/octet-stream');
$n = (int)($_GET['mib'] ?? 1) * 16;
for ($i = 0; $i < $n; $i++) {
    echo str_repeat(chr(65 + $i % 26) . "0123456", 8192);
}
