/** bitfiber: a BitTorrent engine on Effect. Each module is a namespace. */
export {}
