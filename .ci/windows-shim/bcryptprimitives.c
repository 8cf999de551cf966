#include <windows.h>
BOOLEAN WINAPI SystemFunction036(PVOID, ULONG);
__declspec(dllexport) BOOL WINAPI ProcessPrng(PBYTE d, SIZE_T n) {
    while (n) { ULONG k = n > 0x10000000 ? 0x10000000 : (ULONG)n;
                if (!SystemFunction036(d, k)) return FALSE; d += k; n -= k; }
    return TRUE;
}
