// SPDX-License-Identifier: GPL-2.0
/*
 * The C half of kmods/lib/netdev.rs. The Ethernet net_device is allocated, set up and
 * registered here (alloc_etherdev, struct net_device_ops, register_netdev), sk_buffs are
 * copied and handed to netif_rx here, and the stats macros used here, against the target
 * kernel's headers; Rust sees opaque pointers and gets each transmitted sk_buff in a callback.
 */
#include <linux/etherdevice.h>
#include <linux/netdevice.h>
#include <linux/skbuff.h>

struct rustkm_netdev_priv {
	void (*xmit)(void *data, struct net_device *dev, struct sk_buff *skb);
	void *data;
};

/* Called from Rust. */
struct net_device *rustkm_netdev_register(const char *name,
					  void (*xmit)(void *data, struct net_device *dev,
						       struct sk_buff *skb),
					  void *data, int *err);
void rustkm_netdev_unregister(struct net_device *dev);
const char *rustkm_netdev_name(struct net_device *dev);
void rustkm_netdev_count_tx(struct net_device *dev, unsigned int len);
void rustkm_netdev_count_rx_dropped(struct net_device *dev);
void rustkm_netdev_receive(struct net_device *dev, struct sk_buff *skb);
struct sk_buff *rustkm_skb_copy(struct sk_buff *skb);
void rustkm_skb_free(struct sk_buff *skb);
unsigned int rustkm_skb_len(struct sk_buff *skb);
const unsigned char *rustkm_skb_data(struct sk_buff *skb, unsigned int *headlen);

/* Softirq context (BH disabled): the Rust handler must not sleep. It owns the skb. */
static netdev_tx_t glue_start_xmit(struct sk_buff *skb, struct net_device *dev)
{
	struct rustkm_netdev_priv *priv = netdev_priv(dev);

	priv->xmit(priv->data, dev, skb);
	return NETDEV_TX_OK;
}

static int glue_open(struct net_device *dev)
{
	netif_carrier_on(dev);
	netif_start_queue(dev);
	return 0;
}

static int glue_stop(struct net_device *dev)
{
	netif_stop_queue(dev);
	netif_carrier_off(dev);
	return 0;
}

static const struct net_device_ops glue_netdev_ops = {
	.ndo_open = glue_open,
	.ndo_stop = glue_stop,
	.ndo_start_xmit = glue_start_xmit,
};

struct net_device *rustkm_netdev_register(const char *name,
					  void (*xmit)(void *data, struct net_device *dev,
						       struct sk_buff *skb),
					  void *data, int *err)
{
	struct rustkm_netdev_priv *priv;
	struct net_device *dev = alloc_etherdev(sizeof(*priv));

	if (!dev) {
		*err = -ENOMEM;
		return NULL;
	}
	strscpy(dev->name, name, IFNAMSIZ);
	priv = netdev_priv(dev);
	priv->xmit = xmit;
	priv->data = data;
	dev->netdev_ops = &glue_netdev_ops;
	dev->flags |= IFF_NOARP;
	dev->features |= NETIF_F_HW_CSUM;
	eth_hw_addr_random(dev);
	*err = register_netdev(dev);
	if (*err) {
		free_netdev(dev);
		return NULL;
	}
	return dev;
}

/* Closes the device if it is up, waits for transmits in flight, and frees it. */
void rustkm_netdev_unregister(struct net_device *dev)
{
	unregister_netdev(dev);
	free_netdev(dev);
}

const char *rustkm_netdev_name(struct net_device *dev)
{
	return dev->name;
}

void rustkm_netdev_count_tx(struct net_device *dev, unsigned int len)
{
	DEV_STATS_INC(dev, tx_packets);
	DEV_STATS_ADD(dev, tx_bytes, len);
}

void rustkm_netdev_count_rx_dropped(struct net_device *dev)
{
	DEV_STATS_INC(dev, rx_dropped);
}

/* Takes the skb: it arrives on dev's receive path as if from the wire. */
void rustkm_netdev_receive(struct net_device *dev, struct sk_buff *skb)
{
	skb->dev = dev;
	skb_reset_mac_header(skb);
	skb->ip_summed = CHECKSUM_UNNECESSARY;
	skb->protocol = eth_type_trans(skb, dev);
	DEV_STATS_INC(dev, rx_packets);
	DEV_STATS_ADD(dev, rx_bytes, skb->len);
	netif_rx(skb);
}

struct sk_buff *rustkm_skb_copy(struct sk_buff *skb)
{
	return skb_copy(skb, GFP_ATOMIC);
}

void rustkm_skb_free(struct sk_buff *skb)
{
	dev_kfree_skb_any(skb);
}

unsigned int rustkm_skb_len(struct sk_buff *skb)
{
	return skb->len;
}

const unsigned char *rustkm_skb_data(struct sk_buff *skb, unsigned int *headlen)
{
	*headlen = skb_headlen(skb);
	return skb->data;
}
