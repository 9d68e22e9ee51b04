#!/bin/sh
# Make sure the Debian tools Sekisho needs are present.
#   runtime: libmagic (python-magic), libarchive, 7-Zip (disk images, ARJ), unar (RAR that
#            libarchive cannot read): daemon and CLI
#   test:    + qpdf, poppler-utils, LibreOffice (independent checkers and openers in the tests)
#            + libgxps-utils (xpstopdf: another XPS reader) and fonts-dejavu-core (the font
#              the XPS test documents embed)
#            + genisoimage, arj, qemu-utils, dosfstools, mtools, fdisk (disk images and ARJ
#              archives built in the tests)
#            + postfix (smtp-source/smtp-sink: SMTP load and fault peers), swaks with TLS
#              (libnet-ssleay-perl, libio-socket-ssl-perl), openssl (test certificates).
#              postfix is preseeded to "No configuration": no system MTA is set up or started.
#            + chromium (Debian's, driven by Playwright in tests/browser/; Playwright's own
#              browser downloads are never used)
#            + systemd (systemd-analyze verifies deploy/sekisho.service; nothing is started)
#            + libgs-common (Ghostscript's ICC profiles: a CMYK profile for the image tests)
# Installs what is missing when running as root; otherwise fails naming the package.
set -eu
need=""
have_lib() { ldconfig -p 2>/dev/null | grep -q "$1"; }
have_lib libmagic.so.1 || need="$need libmagic1"
have_lib libarchive.so.13 || need="$need libarchive13"
command -v 7zz >/dev/null 2>&1 || command -v 7z >/dev/null 2>&1 || need="$need 7zip"
command -v unar >/dev/null 2>&1 || need="$need unar"
if [ "${1:-runtime}" = test ]; then
  command -v qpdf >/dev/null 2>&1 || need="$need qpdf"
  command -v pdftotext >/dev/null 2>&1 || need="$need poppler-utils"
  command -v xpstopdf >/dev/null 2>&1 || need="$need libgxps-utils"
  [ -f /usr/share/fonts/truetype/dejavu/DejaVuSans.ttf ] || need="$need fonts-dejavu-core"
  command -v soffice >/dev/null 2>&1 || \
    need="$need libreoffice-writer-nogui libreoffice-calc-nogui libreoffice-impress-nogui"
  command -v unshare >/dev/null 2>&1 || need="$need util-linux"
  command -v smtp-sink >/dev/null 2>&1 || [ -x /usr/sbin/smtp-sink ] || need="$need postfix"
  command -v swaks >/dev/null 2>&1 || need="$need swaks"
  command -v genisoimage >/dev/null 2>&1 || need="$need genisoimage"
  command -v arj >/dev/null 2>&1 || need="$need arj"
  command -v qemu-img >/dev/null 2>&1 || need="$need qemu-utils"
  command -v mkfs.vfat >/dev/null 2>&1 || [ -x /usr/sbin/mkfs.vfat ] || need="$need dosfstools"
  command -v mcopy >/dev/null 2>&1 || need="$need mtools"
  command -v sfdisk >/dev/null 2>&1 || [ -x /usr/sbin/sfdisk ] || need="$need fdisk"
  perl -MNet::SSLeay -e1 >/dev/null 2>&1 || need="$need libnet-ssleay-perl"
  perl -MIO::Socket::SSL -e1 >/dev/null 2>&1 || need="$need libio-socket-ssl-perl"
  command -v openssl >/dev/null 2>&1 || need="$need openssl"
  [ -x /usr/bin/chromium ] || need="$need chromium"
  command -v systemd-analyze >/dev/null 2>&1 || need="$need systemd"
  [ -f /usr/share/color/icc/ghostscript/default_cmyk.icc ] || need="$need libgs-common"
fi
[ -z "$need" ] && exit 0
if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing Debian packages:$need" >&2
  export DEBIAN_FRONTEND=noninteractive
  case "$need" in *postfix*)
    # only the test programs are wanted: no main.cf, no MTA started on port 25
    echo "postfix postfix/main_mailer_type select No configuration" | debconf-set-selections
  esac
  apt-get update -qq >/dev/null
  # shellcheck disable=SC2086
  apt-get install -y -qq --no-install-recommends $need >/dev/null
  exit 0
fi
echo "missing Debian packages:$need — install them with: sudo apt-get install$need" >&2
exit 1
