<?php
// header('Location: ...') as apps write it: PHP adds "Status: 302"
header('Location: ' . ($_GET['to'] ?? 'http://x/'));
